import { useState, type FormEvent } from "react";
import { api, call } from "../api/client";
import { fieldErrors, type ApiError, type FieldErrors } from "../api/errors";
import type { Index } from "../api/types";
import { ErrorMessage } from "../components/ErrorMessage";
import { TextAreaField, TextField } from "../components/Field";
import { asApiError } from "../lib/useAsync";

const TAG_KEY = /^[A-Za-z0-9_-]{1,80}$/;

/** `key=value` lines as a tag map, or the first line that is not one. */
export function parseTags(text: string): { tags: Record<string, string> } | { error: string } {
  const tags: Record<string, string> = {};
  const lines = text.split("\n").map((l) => l.trim()).filter(Boolean);
  for (const [i, line] of lines.entries()) {
    const eq = line.indexOf("=");
    const key = eq < 0 ? line : line.slice(0, eq).trim();
    const value = eq < 0 ? "" : line.slice(eq + 1).trim();
    if (!TAG_KEY.test(key)) return { error: `Line ${i + 1}: a tag key is 1–80 letters, digits, '_' and '-'.` };
    if (!value || value.length > 120 || value.includes("\0")) return { error: `Line ${i + 1}: a tag value is 1–120 characters (key=value).` };
    if (key in tags) return { error: `Line ${i + 1}: the tag ${key} is given twice.` };
    tags[key] = value;
  }
  if (Object.keys(tags).length > 20) return { error: "An index has at most 20 tags." };
  return { tags };
}

/** What to send so the index's tags become `next`: the API merges, and "" removes a tag. */
export function tagChanges(current: Record<string, string>, next: Record<string, string>): Record<string, string> {
  const changes: Record<string, string> = {};
  for (const key of Object.keys(current)) if (!(key in next)) changes[key] = "";
  for (const [key, value] of Object.entries(next)) if (current[key] !== value) changes[key] = value;
  return changes;
}

const asLines = (tags: Record<string, string>) =>
  Object.entries(tags)
    .map(([k, v]) => `${k}=${v}`)
    .join("\n");

/** The settings an index may change after creation (`PATCH .../indexes/{name}`): ef_search, deletion protection, tags. */
export function IndexSettings({ slug, index, canEdit, onSaved }: { slug: string; index: Index; canEdit: boolean; onSaved: (index: Index) => void }) {
  const [efSearch, setEfSearch] = useState(String(index.ef_search));
  const [protectedIndex, setProtectedIndex] = useState(index.deletion_protection);
  const [tagsText, setTagsText] = useState(asLines(index.tags));
  const [local, setLocal] = useState<FieldErrors>({});
  const [error, setError] = useState<ApiError | undefined>();
  const [busy, setBusy] = useState(false);
  const [saved, setSaved] = useState("");

  async function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    setError(undefined);
    setSaved("");
    const problems: FieldErrors = {};
    if (!/^\d+$/.test(efSearch) || Number(efSearch) < 1 || Number(efSearch) > 1000) problems.ef_search = "A whole number from 1 to 1,000.";
    const parsed = parseTags(tagsText);
    if ("error" in parsed) problems.tags = parsed.error;
    setLocal(problems);
    if (Object.keys(problems).length || "error" in parsed) return;
    const body: { ef_search?: number; deletion_protection?: boolean; tags?: Record<string, string> } = {};
    if (Number(efSearch) !== index.ef_search) body.ef_search = Number(efSearch);
    if (protectedIndex !== index.deletion_protection) body.deletion_protection = protectedIndex;
    const changes = tagChanges(index.tags, parsed.tags);
    if (Object.keys(changes).length) body.tags = changes;
    if (Object.keys(body).length === 0) {
      setSaved("Nothing to save: the settings are unchanged.");
      return;
    }
    setBusy(true);
    try {
      const updated = await call(api.PATCH("/api/v1/tenants/{tenant_slug}/indexes/{index_name}", { params: { path: { tenant_slug: slug, index_name: index.name } }, body }));
      setSaved("Settings saved.");
      onSaved(updated);
    } catch (cause) {
      setError(asApiError(cause));
    } finally {
      setBusy(false);
    }
  }

  const fields = { ...local, ...fieldErrors(error, ["ef_search", "deletion_protection", "tags"]) };
  return (
    <form className="card" aria-labelledby="index-settings-heading" onSubmit={submit} noValidate>
      <h2 id="index-settings-heading">Settings</h2>
      <p className="hint">
        HNSW m {index.hnsw_m}, ef_construction {index.hnsw_ef_construction} (fixed at creation){index.text_field ? "; full-text field on" : ""}.
      </p>
      <ErrorMessage error={error} />
      <fieldset disabled={!canEdit || busy}>
        <legend className="visually-hidden">Index settings</legend>
        <TextField label="ef_search" name="ef_search" inputMode="numeric" value={efSearch} onChange={(e) => setEfSearch(e.target.value)} error={fields.ef_search} hint="Query-time candidate list: more is better recall, slower queries. 1–1,000." />
        <div className="field checkbox">
          <label>
            <input type="checkbox" checked={protectedIndex} onChange={(e) => setProtectedIndex(e.target.checked)} /> Deletion protection
          </label>
          <span className="hint">While on, deleting the index is refused.</span>
        </div>
        <TextAreaField label="Tags" name="tags" rows={3} value={tagsText} onChange={(e) => setTagsText(e.target.value)} error={fields.tags} hint="One key=value per line; at most 20. Remove a line to remove the tag." />
        {canEdit ? (
          <button type="submit" className="primary">
            Save settings
          </button>
        ) : (
          <p className="hint">Viewers cannot change an index.</p>
        )}
      </fieldset>
      <p role="status" aria-live="polite" className="notice">
        {saved}
      </p>
    </form>
  );
}
