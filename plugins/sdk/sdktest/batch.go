package sdktest

import (
	"testing"

	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/outrigger/outrigger/plugins/sdk"
	ocomponentsv1 "github.com/outrigger/outrigger/proto/gen/outrigger/components/v1"
)

// batched is one call of a UnaryBatch, as the Outrigger host sends the calls
// that queue up under load.
type batched struct {
	method string
	req    proto.Message
}

// callBatch sends calls for instance as one UnaryBatch and returns each
// call's outcome: decoded into replies[i] on success, else the status error.
func callBatch(t *testing.T, conn *grpc.ClientConn, instance string, calls []batched, replies []proto.Message) []error {
	t.Helper()
	req := &ocomponentsv1.UnaryBatchCallRequest{}
	for _, c := range calls {
		raw, err := proto.Marshal(c.req)
		if err != nil {
			t.Fatal(err)
		}
		req.Calls = append(req.Calls, &ocomponentsv1.UnaryCall{Method: c.method, Request: raw,
			TimeoutMicros: callTimeout.Microseconds(),
			Metadata:      []*ocomponentsv1.MetadataEntry{{Key: sdk.InstanceMetadataKey, Values: []string{instance}}}})
	}
	ctx, cancel := instanceCtx(instance, callTimeout)
	defer cancel()
	resp, err := ocomponentsv1.NewUnaryBatchClient(conn).Call(ctx, req)
	if err != nil {
		t.Fatalf("UnaryBatch.Call: %v", err)
	}
	if len(resp.GetResults()) != len(calls) {
		t.Fatalf("UnaryBatch.Call: %d results for %d calls", len(resp.GetResults()), len(calls))
	}
	errs := make([]error, len(calls))
	for i, r := range resp.GetResults() {
		if r.GetCode() != 0 {
			errs[i] = status.FromProto(&spb.Status{Code: r.GetCode(), Message: r.GetMessage(), Details: r.GetDetails()}).Err()
			continue
		}
		if err := proto.Unmarshal(r.GetResponse(), replies[i]); err != nil {
			t.Fatalf("call %d: decoding the reply: %v", i, err)
		}
	}
	return errs
}
