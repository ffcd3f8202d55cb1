import { describe, expect, it } from "vitest";
import cases from "./filterCases.json";
import { checkFilter, checkFilterText, MAX_IN_VALUES } from "./filterLanguage";

describe("the filter language, as the server's parser says it (filterCases.json)", () => {
  for (const c of cases.cases) {
    it(JSON.stringify(c.filter).slice(0, 70), () => {
      const checked = checkFilter(c.filter);
      if (c.ok) expect(checked.ok).toBe(true);
      else expect(checked).toMatchObject({ ok: false, error: c.error });
    });
  }
});

describe("checkFilterText", () => {
  it("treats empty text as no filter", () => {
    expect(checkFilterText("  ")).toEqual({ ok: true, value: undefined, conditions: 0 });
  });
  it("reports JSON syntax errors", () => {
    const checked = checkFilterText('{"genre": ');
    expect(checked.ok).toBe(false);
    if (!checked.ok) expect(checked.error).toMatch(/^Not valid JSON/);
  });
  it("counts conditions", () => {
    expect(checkFilterText('{"a": 1, "b": {"$gte": 1, "$lt": 2}}')).toMatchObject({ ok: true, conditions: 3 });
  });
  it("bounds $in lists", () => {
    const checked = checkFilter({ a: { $in: Array.from({ length: MAX_IN_VALUES + 1 }, (_, i) => i) } });
    expect(checked).toMatchObject({ ok: false, error: `$in takes at most ${MAX_IN_VALUES} values, got ${MAX_IN_VALUES + 1} (at filter['a']['$in'])` });
  });
});
