import { Link } from "react-router";

/** The same page for an unknown route and for a tenant the API answers 404 for: existence never leaks. */
export function NotFound() {
  return (
    <main className="not-found">
      <h1>Page not found</h1>
      <p>There is nothing here, or you do not have access to it.</p>
      <p>
        <Link to="/">Go to the console home</Link>
      </p>
    </main>
  );
}
