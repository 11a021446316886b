// Package secrets is the secrets building block: Dapr's secrets API over HTTP
// (GET /v1.0/secrets/{store}/{key}, GET /v1.0/secrets/{store}/bulk) and gRPC
// (GetSecret, GetBulkSecret), served against secret stores that run as
// out-of-process plugins speaking dapr.proto.components.v1 SecretStore; and
// the resolution of secretKeyRef in Component (and HTTPEndpoint) metadata.
//
// Data flow (API): a handler resolves the named store through the Stores
// interface (the plugin host adapts to it): none configured → 500
// ERR_SECRET_STORES_NOT_CONFIGURED, unknown → 401 ERR_SECRET_STORE_NOT_FOUND
// (Dapr's quirk); checks the Configuration's spec.secrets.scopes for that
// store (→ 403 ERR_PERMISSION_DENIED); then calls the plugin. Bulk answers
// are filtered by the same scopes, silently, as Dapr does. Plugin failures
// are 500 ERR_SECRET_GET. Errors go through the one table in proxy/errs.
//
// Data flow (secretKeyRef): secret stores are provisioned first (Order puts
// them ahead, and orders secret stores that reference each other). Before
// provisioning any other component the wiring calls ResolveRefs with a
// Getter (StoreGetter over the provisioned stores), which fills Value of
// every metadata item carrying a secretKeyRef from the store named in the
// component's auth.secretStore (outside Kubernetes there is no default
// store, so a missing auth.secretStore is an error). As in Dapr, secret
// scopes govern the API only, not component references.
package secrets
