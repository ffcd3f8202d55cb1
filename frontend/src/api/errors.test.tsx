import { render, screen } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { ErrorMessage } from "../components/ErrorMessage";
import { TextField } from "../components/Field";
import { ApiError, fieldErrors, networkError, toApiError } from "./errors";

describe("toApiError", () => {
  it("reads the documented error shape", () => {
    const error = toApiError(409, { error: { code: "last_owner", message: "A tenant must keep an owner.", details: { user_id: 3 } } });
    expect(error).toBeInstanceOf(ApiError);
    expect(error.status).toBe(409);
    expect(error.code).toBe("last_owner");
    expect(error.message).toBe("A tenant must keep an owner.");
    expect(error.details).toEqual({ user_id: 3 });
  });

  it("still gives a message and a code for a body of another shape", () => {
    const error = toApiError(502, "<html>Bad gateway</html>");
    expect(error.code).toBe("http_502");
    expect(error.message).toMatch(/502/);
    expect(networkError(new TypeError("Failed to fetch")).code).toBe("network_error");
  });
});

describe("fieldErrors", () => {
  it("maps validation_error details.fields, nested fields as dotted paths", () => {
    const error = toApiError(400, {
      error: {
        code: "validation_error",
        message: "Invalid input.",
        details: { fields: { name: [{ message: "Too long.", code: "max_length" }, { message: "Bad.", code: "invalid" }], tags: { team: [{ message: "Too long.", code: "max_length" }] } } },
      },
    });
    expect(fieldErrors(error)).toEqual({ name: "Too long. Bad.", "tags.team": "Too long." });
  });

  it("puts a non-validation error on the field its details name", () => {
    const error = toApiError(409, { error: { code: "index_exists", message: "An index named 'docs' exists.", details: { name: "docs" } } });
    expect(fieldErrors(error, ["name", "dimension"])).toEqual({ name: "An index named 'docs' exists." });
    expect(fieldErrors(error, ["dimension"])).toEqual({});
  });

  it("reads the data plane's details.field", () => {
    const error = toApiError(400, { error: { code: "validation_error", message: "topK is required.", details: { field: "topK" } } });
    expect(fieldErrors(error)).toEqual({ topK: "topK is required." });
  });

  it("is empty for anything that is not an ApiError", () => {
    expect(fieldErrors(new Error("boom"), ["name"])).toEqual({});
  });
});

describe("error display", () => {
  it("shows the message and the code in an alert", () => {
    render(<ErrorMessage error={new ApiError(403, "quota_exceeded", "Your plan allows 5 indexes.")} />);
    const alert = screen.getByRole("alert");
    expect(alert).toHaveTextContent("Your plan allows 5 indexes.");
    expect(alert).toHaveTextContent("quota_exceeded");
  });

  it("renders nothing without an error", () => {
    const { container } = render(<ErrorMessage error={undefined} />);
    expect(container).toBeEmptyDOMElement();
  });

  it("shows a field error on its labelled input", () => {
    render(<TextField label="Name" error="1–45 lowercase letters." value="" onChange={() => {}} />);
    const input = screen.getByLabelText("Name");
    expect(input).toHaveAttribute("aria-invalid", "true");
    expect(input).toHaveAccessibleDescription("1–45 lowercase letters.");
  });
});
