import { useId, useState } from "react";

export async function copyText(text: string): Promise<boolean> {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    return false;
  }
}

/** A read-only value shown once (a secret, an invitation link) with a Copy button. */
export function CopyField({ label, value }: { label: string; value: string }) {
  const id = useId();
  const [copied, setCopied] = useState<"" | "yes" | "no">("");
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      <div className="secret-row">
        <input id={id} readOnly value={value} onFocus={(e) => e.target.select()} spellCheck={false} />
        <button type="button" onClick={async () => setCopied((await copyText(value)) ? "yes" : "no")}>
          Copy
        </button>
      </div>
      <p role="status" aria-live="polite" className="hint">
        {copied === "yes" ? "Copied to the clipboard." : copied === "no" ? "The browser refused the clipboard: select the text and copy it by hand." : ""}
      </p>
    </div>
  );
}
