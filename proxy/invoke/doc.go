// Package invoke is the service-invocation building block.
//
// The caller side (Service.Invoke) takes an invocation from the HTTP or gRPC API,
// resolves the target app id to an instance through a Picker (gossip discovery),
// and forwards it over the internal gRPC protocol (proto/outrigger/internal/v1)
// to that instance's sidecar; an invocation of the sidecar's own app id goes
// straight to the app channel. The callee side (Service as an
// InvokeServiceServer) receives the stream, adds Dapr's forwarding headers and
// hands the request to its app channel.
//
//	API ─▶ Invoke ─▶ Picker ─▶ internal Call stream ══▶ callee sidecar ─▶ appchannel ─▶ app
//	                  (retry ×3 @1 s on Unavailable)      frames: head+chunk…, end
//
// Bodies travel in frames of up to 32 KiB; a body that fits in one frame costs
// one message each way. Request bodies of known small size are buffered, so a
// failed hop can be retried on another instance; larger bodies stream with
// bounded memory and are retried only if nothing had been sent. gRPC proxy mode
// (any service and method with `dapr-app-id` metadata) rides the Proxy stream
// with messages passed as raw bytes (RawCodec).
package invoke
