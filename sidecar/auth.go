package sidecar

import (
	"context"
	"crypto/subtle"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// keyFrom returns the key a call carries: the metadata "authorization:
// Bearer KEY", or "x-functions-key: KEY" as the HTTP API takes it.
func keyFrom(ctx context.Context) string {
	md, _ := metadata.FromIncomingContext(ctx)
	for _, v := range md.Get("authorization") {
		if k, ok := strings.CutPrefix(v, "Bearer "); ok {
			return k
		}
	}
	if v := md.Get("x-functions-key"); len(v) > 0 {
		return v[0]
	}
	return ""
}

// authenticate refuses a call without the sidecar's key.
func (s *Server) authenticate(ctx context.Context) error {
	if s.cfg.Key == "" || subtle.ConstantTimeCompare([]byte(keyFrom(ctx)), []byte(s.cfg.Key)) == 1 {
		return nil
	}
	return status.Error(codes.Unauthenticated, "this jetflow sidecar needs its key in the call's metadata: authorization: Bearer KEY "+
		"(the Durable Task SDKs send metadata with their metadataGenerator option)")
}

func (s *Server) unaryAuth(ctx context.Context, req any, _ *grpc.UnaryServerInfo, next grpc.UnaryHandler) (any, error) {
	if err := s.authenticate(ctx); err != nil {
		return nil, err
	}
	return next(ctx, req)
}

func (s *Server) streamAuth(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, next grpc.StreamHandler) error {
	if err := s.authenticate(ss.Context()); err != nil {
		return err
	}
	return next(srv, ss)
}
