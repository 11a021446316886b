package invoke

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	sidecarv1 "github.com/outrigger/outrigger/proto/gen/outrigger/sidecar/v1"
)

// RawMessage is a gRPC message kept as its serialized bytes (gRPC proxy mode).
type RawMessage struct{ B []byte }

// RawCodec passes *RawMessage through unchanged and marshals everything else as
// protobuf, so one server can serve the Dapr API and proxy unknown services.
type RawCodec struct{}

// Marshal implements encoding.Codec.
func (RawCodec) Marshal(v any) ([]byte, error) {
	switch m := v.(type) {
	case *RawMessage:
		return m.B, nil
	case proto.Message:
		return proto.Marshal(m)
	}
	return nil, fmt.Errorf("invoke: cannot marshal %T", v)
}

// Unmarshal implements encoding.Codec.
func (RawCodec) Unmarshal(data []byte, v any) error {
	switch m := v.(type) {
	case *RawMessage:
		m.B = append(m.B[:0], data...)
		return nil
	case proto.Message:
		return proto.Unmarshal(data, m)
	}
	return fmt.Errorf("invoke: cannot unmarshal into %T", v)
}

// Name implements encoding.Codec; it replaces the default "proto" codec.
func (RawCodec) Name() string { return "proto" }

var streamDesc = &grpc.StreamDesc{ServerStreams: true, ClientStreams: true}

// ProxyHandler is the gRPC API server's UnknownServiceHandler: a call to any
// service with `dapr-app-id` metadata is proxied to that app.
func (s *Service) ProxyHandler(_ any, ss grpc.ServerStream) error {
	method, ok := grpc.MethodFromServerStream(ss)
	if !ok {
		return status.Error(codes.Internal, "no method in stream")
	}
	md, _ := metadata.FromIncomingContext(ss.Context())
	ids := md.Get("dapr-app-id")
	if len(ids) == 0 || ids[0] == "" {
		return status.Errorf(codes.Unimplemented, "unknown service or method %s (set dapr-app-id metadata to proxy it to an app)", method)
	}
	target := ids[0]
	out := cleanMD(md)
	if target == s.cfg.AppID {
		return s.proxyLocal(ss, method, out)
	}
	addr, done, err := s.cfg.Picker.Pick(ss.Context(), target)
	if err != nil {
		return status.Errorf(codes.Unavailable, "failed to proxy request: no instance of app %s: %v", target, err)
	}
	err = s.proxyRemote(ss, addr, target, method, out)
	done(err)
	return err
}

func cleanMD(md metadata.MD) metadata.MD {
	out := metadata.MD{}
	for k, v := range md {
		if k == "dapr-api-token" || strings.HasPrefix(k, ":") || k == "content-type" || k == "user-agent" || strings.HasPrefix(k, "grpc-") {
			continue
		}
		out[k] = v
	}
	return out
}

func (s *Service) proxyRemote(ss grpc.ServerStream, addr, target, method string, md metadata.MD) error {
	conn, err := s.conn(addr)
	if err != nil {
		return status.Error(codes.Unavailable, err.Error())
	}
	ctx, cancel := context.WithCancel(ss.Context())
	defer cancel()
	cs, err := sidecarv1.NewInvokeServiceClient(conn).Proxy(ctx)
	if err != nil {
		return err
	}
	md = md.Copy()
	md.Set("dapr-caller-app-id", s.cfg.AppID)
	head := &sidecarv1.ProxyRequest{Method: method, TargetAppId: target, Metadata: mdToWire(md), NoMessage: true}
	if err := cs.Send(head); err != nil {
		return err
	}
	// client → callee
	go func() {
		for {
			var m RawMessage
			if err := ss.RecvMsg(&m); err != nil {
				if err != io.EOF {
					cancel()
				}
				_ = cs.CloseSend()
				return
			}
			if err := cs.Send(&sidecarv1.ProxyRequest{Message: m.B}); err != nil {
				return
			}
		}
	}()
	// callee → client
	headerSent := false
	for {
		f, err := cs.Recv()
		if err != nil {
			return err
		}
		if f.End {
			ss.SetTrailer(wireToMD(f.Metadata))
			if f.StatusCode != 0 {
				return status.Error(codes.Code(f.StatusCode), f.StatusMessage)
			}
			return nil
		}
		if !headerSent && len(f.Metadata) > 0 {
			_ = ss.SendHeader(wireToMD(f.Metadata))
			headerSent = true
		}
		if !f.NoMessage {
			if err := ss.SendMsg(&RawMessage{B: f.Message}); err != nil {
				return err
			}
		}
	}
}

// proxyLocal forwards a raw call to the local gRPC app.
func (s *Service) proxyLocal(ss grpc.ServerStream, method string, md metadata.MD) error {
	if s.cfg.ProxyApp == nil {
		return status.Errorf(codes.FailedPrecondition, "app %s has no gRPC app channel (--app-protocol grpc)", s.cfg.AppID)
	}
	ctx, cancel := context.WithCancel(ss.Context())
	defer cancel()
	ctx = s.cfg.ProxyApp.OutgoingContext(ctx, md)
	cs, err := s.cfg.ProxyApp.Conn().NewStream(ctx, streamDesc, method, grpc.ForceCodec(RawCodec{}))
	if err != nil {
		return err
	}
	go func() {
		for {
			var m RawMessage
			if err := ss.RecvMsg(&m); err != nil {
				if err != io.EOF {
					cancel()
				}
				_ = cs.CloseSend()
				return
			}
			if err := cs.SendMsg(&m); err != nil {
				return
			}
		}
	}()
	if h, err := cs.Header(); err == nil && len(h) > 0 {
		_ = ss.SendHeader(h)
	}
	for {
		var m RawMessage
		if err := cs.RecvMsg(&m); err != nil {
			ss.SetTrailer(cs.Trailer())
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if err := ss.SendMsg(&m); err != nil {
			return err
		}
	}
}

// Proxy is the callee side of gRPC proxy mode.
func (s *Service) Proxy(stream sidecarv1.InvokeService_ProxyServer) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	if s.cfg.ProxyApp == nil {
		return stream.Send(&sidecarv1.ProxyResponse{End: true, NoMessage: true, StatusCode: int32(codes.FailedPrecondition),
			StatusMessage: fmt.Sprintf("app %s has no gRPC app channel (--app-protocol grpc)", s.cfg.AppID)})
	}
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	md := wireToMD(first.Metadata)
	md.Set("dapr-callee-app-id", s.cfg.AppID)
	ctx = s.cfg.ProxyApp.OutgoingContext(ctx, md)
	cs, err := s.cfg.ProxyApp.Conn().NewStream(ctx, streamDesc, first.Method, grpc.ForceCodec(RawCodec{}))
	if err != nil {
		st := status.Convert(err)
		return stream.Send(&sidecarv1.ProxyResponse{End: true, NoMessage: true, StatusCode: int32(st.Code()), StatusMessage: st.Message()})
	}
	go func() {
		for {
			f, err := stream.Recv()
			if err != nil {
				if err != io.EOF {
					cancel()
				}
				_ = cs.CloseSend()
				return
			}
			if f.NoMessage {
				continue
			}
			if err := cs.SendMsg(&RawMessage{B: f.Message}); err != nil {
				return
			}
		}
	}()
	if h, err := cs.Header(); err == nil && len(h) > 0 {
		if err := stream.Send(&sidecarv1.ProxyResponse{Metadata: mdToWire(h), NoMessage: true}); err != nil {
			return err
		}
	}
	for {
		var m RawMessage
		if err := cs.RecvMsg(&m); err != nil {
			end := &sidecarv1.ProxyResponse{End: true, NoMessage: true, Metadata: mdToWire(cs.Trailer())}
			if !errors.Is(err, io.EOF) {
				st := status.Convert(err)
				end.StatusCode, end.StatusMessage = int32(st.Code()), st.Message()
			}
			return stream.Send(end)
		}
		if err := stream.Send(&sidecarv1.ProxyResponse{Message: m.B}); err != nil {
			return err
		}
	}
}

func mdToWire(md metadata.MD) []*sidecarv1.Header {
	out := make([]*sidecarv1.Header, 0, len(md))
	for k, v := range md {
		out = append(out, &sidecarv1.Header{Key: k, Values: v})
	}
	return out
}

func wireToMD(hs []*sidecarv1.Header) metadata.MD {
	md := make(metadata.MD, len(hs))
	for _, h := range hs {
		md[strings.ToLower(h.Key)] = h.Values
	}
	return md
}
