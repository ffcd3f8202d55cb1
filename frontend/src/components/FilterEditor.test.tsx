import { render, screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { useState } from "react";
import { describe, expect, it } from "vitest";
import { FilterEditor } from "./FilterEditor";

function Editor({ error }: { error?: string }) {
  const [text, setText] = useState("");
  return <FilterEditor label="Row filter" name="row_filter" value={text} onChange={setText} error={error} examples={[{ label: "one user", filter: '{"user_id": {"$eq": "u42"}}' }]} />;
}

describe("FilterEditor", () => {
  it("says what is wrong, and where, while the filter is typed", async () => {
    render(<Editor />);
    const box = screen.getByLabelText("Row filter");
    await userEvent.type(box, '{{"year": {{"$gte": "2020"}}');
    expect(box).toHaveAttribute("aria-invalid", "true");
    expect(screen.getByText("$gte takes a number, got string (at filter['year']['$gte'])")).toBeInTheDocument();
  });

  it("fills in an example, and counts its conditions", async () => {
    render(<Editor />);
    await userEvent.click(screen.getByRole("button", { name: '{"user_id": {"$eq": "u42"}}' }));
    const box = screen.getByLabelText("Row filter");
    expect(box).toHaveValue('{"user_id": {"$eq": "u42"}}');
    expect(box).not.toHaveAttribute("aria-invalid");
    expect(screen.getByText("Valid filter: 1 condition.")).toBeInTheDocument();
  });

  it("shows the server's error for a valid-looking filter", () => {
    render(<Editor error="row filters need id_prefix with the write scope" />);
    expect(screen.getByText("row filters need id_prefix with the write scope")).toBeInTheDocument();
  });
});
