import { lazy, Suspense } from "react";
import { Navigate, Outlet, useLocation, type RouteObject } from "react-router";
import { useAuth } from "./auth";
import { AppHeader } from "./components/AppHeader";
import { ErrorMessage } from "./components/ErrorMessage";
import { Loading } from "./components/Loading";
import { AcceptInvitationPage } from "./pages/AcceptInvitation";
import { AuditPage } from "./pages/AuditPage";
import { BillingPage } from "./pages/BillingPage";
import { SignInPage, SignUpPage } from "./pages/AuthPages";
import { ClusterPage } from "./pages/ClusterPage";
import { ClustersPage } from "./pages/ClustersPage";
import { Home, NewTenantPage } from "./pages/Home";
import { IndexesPage } from "./pages/IndexesPage";
import { KeysPage } from "./pages/KeysPage";
import { MembersPage } from "./pages/MembersPage";
import { NotFound } from "./pages/NotFound";
import { OperatorTenantPage } from "./pages/OperatorTenantPage";
import { OperatorClustersPage, OperatorHealthPage, OperatorLayout, OperatorTenantsPage } from "./pages/OperatorPages";
import { OverviewPage } from "./pages/OverviewPage";
import { TenantLayout } from "./pages/TenantLayout";

export { BASENAME } from "./lib/basename";

// The index page (query playground) is a chunk of its own, fetched when first opened.
const IndexPage = lazy(() => import("./pages/IndexPage"));

function IndexRoute() {
  return (
    <Suspense fallback={<Loading what="the index page" />}>
      <IndexPage />
    </Suspense>
  );
}

/** Unauthenticated users are sent to sign in, and come back where they were going. */
function RequireAuth() {
  const { user, error } = useAuth();
  const location = useLocation();
  if (user === undefined) return <Loading what="your session" />;
  if (user === null) {
    return (
      <>
        <ErrorMessage error={error} title="Could not check your session." />
        <Navigate to="/sign-in" replace state={{ from: location.pathname + location.search }} />
      </>
    );
  }
  return <Outlet />;
}

function PublicOnly() {
  const { user } = useAuth();
  if (user === undefined) return <Loading what="your session" />;
  return <Outlet />;
}

function NewTenantShell() {
  return (
    <>
      <AppHeader />
      <NewTenantPage />
    </>
  );
}

export const routes: RouteObject[] = [
  {
    element: <PublicOnly />,
    children: [
      { path: "sign-in", element: <SignInPage /> },
      { path: "sign-up", element: <SignUpPage /> },
    ],
  },
  {
    element: <RequireAuth />,
    children: [
      { index: true, element: <Home /> },
      { path: "new-tenant", element: <NewTenantShell /> },
      { path: "invitations/accept", element: <AcceptInvitationPage /> },
      {
        path: "t/:slug",
        element: <TenantLayout />,
        children: [
          { index: true, element: <OverviewPage /> },
          { path: "indexes", element: <IndexesPage /> },
          { path: "indexes/:name", element: <IndexRoute /> },
          { path: "clusters", element: <ClustersPage /> },
          { path: "clusters/:name", element: <ClusterPage /> },
          { path: "keys", element: <KeysPage /> },
          { path: "members", element: <MembersPage /> },
          { path: "audit", element: <AuditPage /> },
          { path: "billing", element: <BillingPage /> },
          { path: "*", element: <NotFound /> },
        ],
      },
      {
        // Platform operators (staff) only; anyone else sees the not-found page.
        path: "operator",
        element: <OperatorLayout />,
        children: [
          { index: true, element: <OperatorTenantsPage /> },
          { path: "clusters", element: <OperatorClustersPage /> },
          { path: "health", element: <OperatorHealthPage /> },
          { path: "tenants/:slug", element: <OperatorTenantPage /> },
          { path: "*", element: <NotFound /> },
        ],
      },
    ],
  },
  { path: "*", element: <NotFound /> },
];
