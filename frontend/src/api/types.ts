import type { components } from "./schema";

type S = components["schemas"];
export type User = S["UserOutput"];
export type Tenant = S["TenantOutput"];
export type Index = S["IndexOutput"];
export type ApiKey = S["ApiKeyOutput"];
export type ApiKeyCreated = S["ApiKeyCreatedOutput"];
export type Member = S["MemberOutput"];
export type Limits = S["LimitsOutput"];
export type UsageRow = S["UsageRowOutput"];
export type StoredVectors = S["StoredVectorsOutput"];
export type AuditEvent = S["AuditEventOutput"];
export type Metric = S["MetricEnum"];
export type Scope = S["ScopeEnum"];
export type Invitation = S["InvitationOutput"];
export type InvitationCreated = S["InvitationCreatedOutput"];
export type Role = S["RoleEnum"];
export type Filter = S["Filter"];
