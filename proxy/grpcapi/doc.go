// Package grpcapi is the Dapr-compatible gRPC API server (default :50001),
// serving dapr.proto.runtime.v1.Dapr from the generated package of
// github.com/dapr/dapr v1.14.0.
//
// The served value is composed: the core methods here (InvokeService,
// metadata, shutdown), one embedded interface per building block (Blocks), and
// the generated Unimplemented server underneath, so every method no block
// serves yet answers Unimplemented naming the method. Calls to services the
// server does not know, carrying `dapr-app-id` metadata, go to the invoke
// building block's proxy handler (gRPC proxy mode).
package grpcapi
