package errs

import (
	"google.golang.org/grpc/codes"
)

// Row is one kind of API error: Dapr's code, HTTP status, gRPC code and message format.
type Row struct {
	Code   string     // Dapr errorCode, e.g. ERR_STATE_GET
	HTTP   int        // HTTP status
	GRPC   codes.Code // gRPC status code
	Format string     // fmt format for the message; its verbs take New's arguments
	Reason string     // optional google.rpc.ErrorInfo reason (DAPR_<AREA>_<CODE>)
}

// The table. Grouped by building block; keep codes unique (a test checks).
var (
	// General.
	BadRequest       = Row{"ERR_BAD_REQUEST", 400, codes.InvalidArgument, "%s", ""}
	MalformedRequest = Row{"ERR_MALFORMED_REQUEST", 400, codes.InvalidArgument, "failed deserializing HTTP body: %s", ""}
	BodyRead         = Row{"ERR_BODY_READ", 400, codes.InvalidArgument, "failed to read request body: %s", ""}
	BodyTooLarge     = Row{"ERR_BODY_READ", 413, codes.ResourceExhausted, "request body larger than the limit of %d bytes", ""}
	Unimplemented    = Row{"ERR_API_UNIMPLEMENTED", 501, codes.Unimplemented, "%s is not implemented", ""}
	Internal         = Row{"ERROR", 500, codes.Internal, "%s", ""}
	// APIToken is the one plain-text error: Dapr answers 401 with body "invalid api token".
	APIToken = Row{"ERR_UNAUTHENTICATED", 401, codes.Unauthenticated, "invalid api token", ""}

	// Service invocation.
	DirectInvoke         = Row{"ERR_DIRECT_INVOKE", 500, codes.Internal, "failed to invoke, id: %s, err: %s", ""}
	DirectInvokeNoAppID  = Row{"ERR_DIRECT_INVOKE", 404, codes.NotFound, "failed getting app id either from the URL path or the header dapr-app-id", ""}
	DirectInvokeNotReady = Row{"ERR_DIRECT_INVOKE", 500, codes.Internal, "invoke API is not ready", ""}
	AppChannelNil        = Row{"ERR_APP_CHANNEL_NIL", 500, codes.Internal, "app channel is not initialized", ""}

	// Health and metadata.
	HealthNotReady         = Row{"ERR_HEALTH_NOT_READY", 500, codes.Internal, "dapr is not ready", ""}
	OutboundHealthNotReady = Row{"ERR_OUTBOUND_HEALTH_NOT_READY", 500, codes.Internal, "dapr outbound is not ready", ""}
	HealthAppIDNotMatch    = Row{"ERR_HEALTH_APPID_NOT_MATCH", 500, codes.Internal, "dapr app-id does not match", ""}
	MetadataGet            = Row{"ERR_METADATA_GET", 500, codes.Internal, "failed deserializing metadata: %s", ""}

	// State.
	StateStoreNotConfigured  = Row{"ERR_STATE_STORE_NOT_CONFIGURED", 500, codes.FailedPrecondition, "state store is not configured", "DAPR_STATE_NOT_CONFIGURED"}
	StateStoreNotFound       = Row{"ERR_STATE_STORE_NOT_FOUND", 400, codes.InvalidArgument, "state store %s is not found", "DAPR_STATE_NOT_FOUND"}
	StateGet                 = Row{"ERR_STATE_GET", 500, codes.Internal, "fail to get %s from state store %s: %s", ""}
	StateSave                = Row{"ERR_STATE_SAVE", 500, codes.Internal, "failed saving state in state store %s: %s", ""}
	StateDelete              = Row{"ERR_STATE_DELETE", 500, codes.Internal, "failed deleting state with key %s: %s", ""}
	StateBulkGet             = Row{"ERR_STATE_BULK_GET", 500, codes.Internal, "failed getting state with keys %s: %s", ""}
	StateTransaction         = Row{"ERR_STATE_TRANSACTION", 500, codes.Internal, "error while executing state transaction: %s", ""}
	StateQuery               = Row{"ERR_STATE_QUERY", 500, codes.Internal, "failed query in state store %s: %s", ""}
	StateStoreNotSupported   = Row{"ERR_STATE_STORE_NOT_SUPPORTED", 500, codes.Internal, "state store %s doesn't support %s", "DAPR_STATE_NOT_SUPPORTED"}
	StateTooManyTransactions = Row{"ERR_STATE_STORE_TOO_MANY_TRANSACTIONS", 400, codes.InvalidArgument, "the transaction contains %d operations, which is more than what the state store supports: %d", "DAPR_STATE_TOO_MANY_TRANSACTIONS"}
	NotSupportedStateOp      = Row{"ERR_NOT_SUPPORTED_STATE_OPERATION", 400, codes.Unimplemented, "operation type %s not supported", ""}
	StateIllegalKey          = Row{"ERR_MALFORMED_REQUEST", 400, codes.InvalidArgument, "input key/keyPrefix '%s' can't contain '||'", "DAPR_STATE_ILLEGAL_KEY"}
	StateETagMismatchSave    = Row{"ERR_STATE_SAVE", 409, codes.Aborted, "failed saving state in state store %s: possible etag mismatch. error from state store: %s", ""}
	StateETagMismatchDelete  = Row{"ERR_STATE_DELETE", 409, codes.Aborted, "failed deleting state with key %s: possible etag mismatch. error from state store: %s", ""}
	StateETagMismatchTx      = Row{"ERR_STATE_TRANSACTION", 409, codes.Aborted, "error while executing state transaction: possible etag mismatch. error from state store: %s", ""}
	StateETagInvalidSave     = Row{"ERR_STATE_SAVE", 400, codes.InvalidArgument, "failed saving state in state store %s: invalid etag value: %s", ""}
	StateETagInvalidDelete   = Row{"ERR_STATE_DELETE", 400, codes.InvalidArgument, "failed deleting state with key %s: invalid etag value: %s", ""}
	StateETagInvalidTx       = Row{"ERR_STATE_TRANSACTION", 400, codes.InvalidArgument, "error while executing state transaction: invalid etag value: %s", ""}
	// Bulk delete (gRPC DeleteBulkState) names the store, not a key.
	StateDeleteBulk             = Row{"ERR_STATE_DELETE", 500, codes.Internal, "failed deleting state in state store %s: %s", ""}
	StateETagMismatchDeleteBulk = Row{"ERR_STATE_DELETE", 409, codes.Aborted, "failed deleting state in state store %s: possible etag mismatch. error from state store: %s", ""}
	StateETagInvalidDeleteBulk  = Row{"ERR_STATE_DELETE", 400, codes.InvalidArgument, "failed deleting state in state store %s: invalid etag value: %s", ""}

	// Pub/sub.
	PubsubNotFound         = Row{"ERR_PUBSUB_NOT_FOUND", 404, codes.InvalidArgument, "pubsub %s not found", "DAPR_PUBSUB_NOT_FOUND"}
	PubsubNotConfigured    = Row{"ERR_PUBSUB_NOT_CONFIGURED", 400, codes.FailedPrecondition, "no pubsub is configured", "DAPR_PUBSUB_NOT_CONFIGURED"}
	PubsubEmpty            = Row{"ERR_PUBSUB_EMPTY", 404, codes.InvalidArgument, "pubsub name is empty", "DAPR_PUBSUB_NAME_EMPTY"}
	TopicNameEmpty         = Row{"ERR_TOPIC_NAME_EMPTY", 404, codes.InvalidArgument, "topic is empty in pubsub %s", "DAPR_PUBSUB_TOPIC_NAME_EMPTY"}
	PubsubForbidden        = Row{"ERR_PUBSUB_FORBIDDEN", 403, codes.PermissionDenied, "topic %s is not allowed for app id %s", "DAPR_PUBSUB_FORBIDDEN"}
	PubsubPublishMessage   = Row{"ERR_PUBSUB_PUBLISH_MESSAGE", 500, codes.Internal, "error when publishing to topic %s in pubsub %s: %s", "DAPR_PUBSUB_PUBLISH_MESSAGE"}
	PubsubCloudEventsSer   = Row{"ERR_PUBSUB_CLOUD_EVENTS_SER", 500, codes.Internal, "error when marshalling cloud event envelope for topic %s pubsub %s: %s", "DAPR_PUBSUB_CLOUD_EVENTS_SER"}
	PubsubEventsSer        = Row{"ERR_PUBSUB_EVENTS_SER", 400, codes.InvalidArgument, "error when marshalling events to bytes for topic %s pubsub %s: %s", "DAPR_PUBSUB_EVENTS_SER"}
	PubsubRequestMetadata  = Row{"ERR_PUBSUB_REQUEST_METADATA", 400, codes.InvalidArgument, "failed deserializing metadata: %s", "DAPR_PUBSUB_METADATA_DESERIALIZATION"}
	InvokeOutputBinding    = Row{"ERR_INVOKE_OUTPUT_BINDING", 500, codes.Internal, "error invoking output binding %s: %s", ""}
	SecretStoresNotConfig  = Row{"ERR_SECRET_STORES_NOT_CONFIGURED", 500, codes.FailedPrecondition, "secret store is not configured", ""}
	SecretStoreNotFound    = Row{"ERR_SECRET_STORE_NOT_FOUND", 401, codes.InvalidArgument, "failed finding secret store with key %s", ""} // quirk: Dapr 1.14 answers 401
	SecretPermissionDenied = Row{"ERR_PERMISSION_DENIED", 403, codes.PermissionDenied, "access denied by policy to get %q from %q", ""}
	SecretGet              = Row{"ERR_SECRET_GET", 500, codes.Internal, "failed getting secret with key %s from secret store %s: %s", ""}
	SecretBulkGet          = Row{"ERR_SECRET_GET", 500, codes.Internal, "failed getting secrets from secret store %s: %s", ""}

	// Configuration (Dapr 1.14 answers these without ErrorInfo reasons).
	ConfigurationStoreNotConfigured = Row{"ERR_CONFIGURATION_STORE_NOT_CONFIGURED", 500, codes.FailedPrecondition, "configuration stores not configured", ""}
	ConfigurationStoreNotFound      = Row{"ERR_CONFIGURATION_STORE_NOT_FOUND", 400, codes.InvalidArgument, "configuration store %s not found", ""}
	ConfigurationGet                = Row{"ERR_CONFIGURATION_GET", 500, codes.Internal, "failed to get %v from Configuration store %s: %s", ""}
	ConfigurationSubscribe          = Row{"ERR_CONFIGURATION_SUBSCRIBE", 500, codes.InvalidArgument, "failed to subscribe %v from Configuration store %s: %s", ""} // quirk: gRPC InvalidArgument
	ConfigurationUnsubscribe        = Row{"ERR_CONFIGURATION_UNSUBSCRIBE", 500, codes.Internal, "failed to unsubscribe to configuration request %s: %s", ""}
	ConfigurationAppChannelNil      = Row{"ERR_APP_CHANNEL_NIL", 500, codes.Internal, "app channel is not initialized. cannot subscribe to configuration updates", ""}

	// Distributed lock.
	LockStoreNotConfigured = Row{"ERR_LOCK_STORE_NOT_CONFIGURED", 500, codes.FailedPrecondition, "lock store is not configured", ""}
	LockStoreNotFound      = Row{"ERR_LOCK_STORE_NOT_FOUND", 400, codes.InvalidArgument, "lock store %s not found", ""}
	LockResourceIDEmpty    = Row{"ERR_MALFORMED_REQUEST", 400, codes.InvalidArgument, "ResourceId is empty in lock store %s", ""}
	LockOwnerEmpty         = Row{"ERR_MALFORMED_REQUEST", 400, codes.InvalidArgument, "LockOwner is empty in lock store %s", ""}
	LockExpiryNotPositive  = Row{"ERR_MALFORMED_REQUEST", 400, codes.InvalidArgument, "ExpiryInSeconds is not positive in lock store %s", ""}
	TryLock                = Row{"ERR_TRY_LOCK", 500, codes.Internal, "failed to try acquiring lock: %s", ""}
	Unlock                 = Row{"ERR_UNLOCK", 500, codes.Internal, "failed to release lock: %s", ""}

	// Actors (reserved for the actors issue).
	ActorInstanceMissing = Row{"ERR_ACTOR_INSTANCE_MISSING", 400, codes.Internal, "actor instance is missing", ""} // quirk: 400 + Internal
	ActorRuntimeNotFound = Row{"ERR_ACTOR_RUNTIME_NOT_FOUND", 500, codes.Internal, "the state store is not configured to use the actor runtime. Have you set the - name: actorStateStore value: \"true\" in your state store component file?", ""}
)

// All lists every row, for tests and documentation.
func All() []Row {
	return []Row{
		BadRequest, MalformedRequest, BodyRead, BodyTooLarge, Unimplemented, Internal, APIToken,
		DirectInvoke, DirectInvokeNoAppID, DirectInvokeNotReady, AppChannelNil,
		HealthNotReady, OutboundHealthNotReady, HealthAppIDNotMatch, MetadataGet,
		StateStoreNotConfigured, StateStoreNotFound, StateGet, StateSave, StateDelete, StateBulkGet,
		StateTransaction, StateQuery, StateStoreNotSupported, StateTooManyTransactions, NotSupportedStateOp,
		StateIllegalKey, StateETagMismatchSave, StateETagMismatchDelete, StateETagMismatchTx,
		StateETagInvalidSave, StateETagInvalidDelete, StateETagInvalidTx,
		StateDeleteBulk, StateETagMismatchDeleteBulk, StateETagInvalidDeleteBulk,
		PubsubNotFound, PubsubNotConfigured, PubsubEmpty, TopicNameEmpty, PubsubForbidden,
		PubsubPublishMessage, PubsubCloudEventsSer, PubsubEventsSer, PubsubRequestMetadata,
		InvokeOutputBinding, SecretStoresNotConfig, SecretStoreNotFound, SecretPermissionDenied, SecretGet, SecretBulkGet,
		ConfigurationStoreNotConfigured, ConfigurationStoreNotFound, ConfigurationGet, ConfigurationSubscribe,
		ConfigurationUnsubscribe, ConfigurationAppChannelNil,
		LockStoreNotConfigured, LockStoreNotFound, LockResourceIDEmpty, LockOwnerEmpty, LockExpiryNotPositive, TryLock, Unlock,
		ActorInstanceMissing, ActorRuntimeNotFound,
	}
}
