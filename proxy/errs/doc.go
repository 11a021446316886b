// Package errs is Outrigger's one table of API errors.
//
// Every error the Dapr-compatible APIs return is a row here: the Dapr error code
// (ERR_…), its HTTP status, its gRPC code and a message format. Handlers build a
// value with a row's constructor (errs.StateStoreNotFound.New(name)) and hand it
// to WriteHTTP or GRPC, which render Dapr's wire shapes: the JSON body
// {"errorCode","message"} on HTTP, a status with a google.rpc.ErrorInfo detail on
// gRPC. Rows are immutable values; Dapr's odd mappings are reproduced on purpose
// and marked "quirk" so nobody "fixes" them.
package errs
