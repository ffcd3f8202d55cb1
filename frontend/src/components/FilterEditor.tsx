import { checkFilterText } from "../lib/filterLanguage";
import { TextAreaField } from "./Field";

export interface FilterExample {
  label: string;
  filter: string;
}

const OPERATORS = "$eq, $ne, $gt, $gte, $lt, $lte, $in, $nin, $exists, $and, $or";

/**
 * A metadata filter (Pinecone's syntax) typed as JSON, checked while it is typed by the same
 * rules as the server's parser (lib/filterLanguage.ts), with examples that fill it in. An error
 * from the server for this field (`error`) shows when the text itself is valid.
 */
export function FilterEditor({
  label,
  name,
  value,
  onChange,
  error,
  examples,
  hint,
  rows = 3,
}: {
  label: string;
  name: string;
  value: string;
  onChange: (text: string) => void;
  error?: string | undefined;
  examples: readonly FilterExample[];
  hint?: string;
  rows?: number;
}) {
  const checked = checkFilterText(value);
  const problem = checked.ok ? error : checked.error;
  const state = checked.ok && value.trim() && !error ? `Valid filter: ${checked.conditions} condition${checked.conditions === 1 ? "" : "s"}.` : "";
  return (
    <div className="filter-editor">
      <TextAreaField
        label={label}
        name={name}
        rows={rows}
        spellCheck={false}
        autoComplete="off"
        value={value}
        onChange={(e) => onChange(e.target.value)}
        error={problem}
        hint={hint ?? `Optional: a JSON object on the metadata (${OPERATORS}).`}
      />
      <p className="hint filter-state" aria-live="polite">
        {state}
      </p>
      <div className="examples" role="group" aria-label={`${label} examples`}>
        <span className="hint">Examples:</span>
        {examples.map((example) => (
          <button type="button" key={example.filter} title={example.label} onClick={() => onChange(example.filter)}>
            {example.filter}
          </button>
        ))}
      </div>
    </div>
  );
}
