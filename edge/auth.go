package edge

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/textproto"
	"strings"

	"github.com/blastradius/blastradius/internal/telemetry"
	"go.opentelemetry.io/otel/attribute"
)

// DefaultMaxTokenSize is the default maximum token size, in bytes.
const DefaultMaxTokenSize = 8 << 10

// AuthOption configures Auth. Every Option is an AuthOption. A nil
// AuthOption is skipped.
type AuthOption interface {
	applyAuth(*authConfig)
}

type authConfig struct {
	common
	header, scheme string
	cookie         string
	maxSize        int
	required       bool
	observer       func(*http.Request, AuthResult)
}

type authOption func(*authConfig)

func (o authOption) applyAuth(c *authConfig) { o(c) }

// WithHeader reads the token from header name instead of Authorization. The
// value must be scheme, one or more spaces, then the token; the scheme is
// matched case-insensitively. An empty scheme takes the whole header value as
// the token. A header with another scheme counts as ReasonMissing (RFC 6750
// §3.1: an unsupported method is no authentication information).
//
// name must be a valid header field name and scheme, if not empty, a valid
// auth-scheme: both are HTTP tokens (RFC 9110 §5.1, §11.1).
func WithHeader(name, scheme string) AuthOption {
	return authOption(func(c *authConfig) {
		if !isToken(name) || (scheme != "" && !isToken(scheme)) {
			invalid("WithHeader(%q, %q): name and scheme must be HTTP tokens", name, scheme)
			return
		}
		c.header, c.scheme = textproto.CanonicalMIMEHeaderKey(name), scheme
	})
}

// WithCookie also reads the token from the cookie name, when the request has
// no token header at all. name must be a valid cookie name, an HTTP token
// (RFC 6265 §4.1.1).
func WithCookie(name string) AuthOption {
	return authOption(func(c *authConfig) {
		if !isToken(name) {
			invalid("WithCookie(%q): name must be an HTTP token", name)
			return
		}
		c.cookie = name
	})
}

// isToken reports whether s is an HTTP token (RFC 9110 §5.6.2): one or more
// visible ASCII characters other than separators.
func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return s != ""
}

// WithMaxTokenSize sets the maximum token size in bytes. A larger token
// counts as ReasonOversized and is never passed to verify. Default
// DefaultMaxTokenSize (8 KiB).
func WithMaxTokenSize(n int) AuthOption {
	return authOption(func(c *authConfig) {
		if n <= 0 {
			invalid("WithMaxTokenSize(%d): size must be > 0", n)
			return
		}
		c.maxSize = n
	})
}

// WithRequired makes Auth answer 401 instead of continuing as anonymous when
// there is no valid token: with `WWW-Authenticate: Bearer` for a missing
// token, and `WWW-Authenticate: Bearer error="invalid_token"` for any other
// reason (RFC 6750 §3.1). The next handler is not called.
func WithRequired() AuthOption {
	return authOption(func(c *authConfig) { c.required = true })
}

// WithObserver calls fn with every request's AuthResult, before the next
// handler runs (or the 401 is written). fn runs on the request goroutine and
// must be fast.
func WithObserver(fn func(*http.Request, AuthResult)) AuthOption {
	return authOption(func(c *authConfig) { c.observer = fn })
}

type authKey struct{}

// authNode is the part of an authCtx that does not depend on P.
type authNode interface {
	result() AuthResult
	parent() context.Context
}

// authCtx is the context node Auth stores: one allocation holds both the
// principal and the result, and Value returns the node itself, so reading
// the principal does not box it.
type authCtx[P any] struct {
	context.Context
	principal P
	res       AuthResult
}

func (c *authCtx[P]) Value(key any) any {
	if key == (authKey{}) {
		return c
	}
	return c.Context.Value(key)
}

func (c *authCtx[P]) result() AuthResult      { return c.res }
func (c *authCtx[P]) parent() context.Context { return c.Context }

// PrincipalFrom returns the principal that an Auth[P] middleware stored in
// ctx, and whether there is one. It is false for an anonymous request.
func PrincipalFrom[P any](ctx context.Context) (P, bool) {
	for ctx != nil {
		v := ctx.Value(authKey{})
		if c, ok := v.(*authCtx[P]); ok && c.res.Outcome == OutcomeOK {
			return c.principal, true
		}
		n, ok := v.(authNode)
		if !ok {
			break
		}
		ctx = n.parent()
	}
	var zero P
	return zero, false
}

// AuthResultFrom returns the result of the innermost Auth middleware that saw
// the request, and whether there was one.
func AuthResultFrom(ctx context.Context) (AuthResult, bool) {
	if n, ok := ctx.Value(authKey{}).(authNode); ok {
		return n.result(), true
	}
	return AuthResult{}, false
}

type auth[P any] struct {
	verify   func(context.Context, string) (P, error)
	cfg      authConfig
	logKeys  [numReasons]*logKey          // "edge: auth failed", per reason
	results  *telemetry.Counts            // atomic, read when the SDK collects
	index    [numOutcomes][numReasons]int // (outcome, reason) -> results index
	spanAttr [numOutcomes][numReasons][]attribute.KeyValue
	failed   AuthResult // template
	wwwAuth  string     // WWW-Authenticate for invalid tokens
	wwwEmpty string     // WWW-Authenticate for a missing token
}

// Auth returns middleware that verifies the request's token with verify.
//
// The token comes from `Authorization: Bearer <token>` by default (see
// WithHeader and WithCookie); one longer than the maximum size (8 KiB by
// default) is never passed to verify. On success the principal is stored in
// the request context (PrincipalFrom). On failure Auth classifies a Reason:
// verify signals it by returning (or wrapping) ErrMalformed, ErrExpired,
// ErrInvalid or ErrUnsupportedVersion; the compat package's ErrUnrecognized
// and ErrSunset count as unsupported_version and its ErrTooLarge as
// oversized; any other error counts as invalid; a panic in verify is
// recovered and counts as ReasonPanic. A verify that fails after the request
// context was canceled (the client went away) counts as ReasonCanceled,
// whatever its error.
//
// By default a failed request continues as anonymous and AuthResultFrom says
// why; with WithRequired it gets a 401. Auth never answers 5xx for anything
// the client sent. Every request is counted in blastradius.edge.auth.results
// and every failure is logged through a log budget (missing tokens and
// canceled requests at Debug, panics at Error with the stack, other reasons
// at Warn).
//
// verify receives the request context. A decoder from the compat package
// plugs in directly: edge.Auth(dec.Verify). Auth panics at construction if
// verify is nil or an option is invalid (see ErrInvalidConfig).
func Auth[P any](verify func(ctx context.Context, token string) (P, error), opts ...AuthOption) Middleware {
	a := &auth[P]{verify: verify}
	a.cfg.header, a.cfg.scheme = "Authorization", "Bearer"
	a.cfg.maxSize = DefaultMaxTokenSize
	for _, o := range opts {
		if o != nil {
			o.applyAuth(&a.cfg)
		}
	}
	if a.verify == nil {
		invalid("Auth(nil): nil verify")
	}
	budget := a.cfg.budget()
	for r := range numReasons {
		a.logKeys[r] = newLogKey(budget, "edge: auth failed", r.String())
	}
	var sets [][]attribute.KeyValue
	for o := range numOutcomes {
		for r := range numReasons {
			if (o == OutcomeOK) != (r == ReasonNone) {
				continue
			}
			kv := []attribute.KeyValue{attribute.String("result", o.String())}
			if r != ReasonNone {
				kv = append(kv, attribute.String("reason", r.String()))
			}
			a.index[o][r] = len(sets)
			sets = append(sets, kv)
			a.spanAttr[o][r] = []attribute.KeyValue{attribute.String(attrAuthOutcome, o.String())}
			if r != ReasonNone {
				a.spanAttr[o][r] = append(a.spanAttr[o][r], attribute.String(attrAuthReason, r.String()))
			}
		}
	}
	a.results = telemetry.NewCounts(telemetry.Meter(a.cfg.mp, "edge"), "blastradius.edge.auth.results",
		"Requests seen by edge.Auth, by result and reason.", "{request}", sets...)
	a.failed.Outcome = OutcomeAnonymous
	if a.cfg.required {
		a.failed.Outcome = OutcomeRejected
	}
	scheme := a.cfg.scheme
	if scheme == "" {
		scheme = "Bearer"
	}
	a.wwwAuth = scheme + ` error="invalid_token"`
	a.wwwEmpty = scheme
	return a.wrap
}

func (a *auth[P]) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { a.serve(next, w, r) })
}

func (a *auth[P]) serve(next http.Handler, w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	tok, reason := a.extract(r)
	var (
		p   P
		err error
	)
	if reason == ReasonNone {
		p, reason, err = a.call(ctx, tok)
	}
	span := telemetry.Recording(ctx)
	if reason == ReasonNone {
		a.results.Add(a.index[OutcomeOK][ReasonNone], 1)
		if span != nil {
			span.SetAttributes(a.spanAttr[OutcomeOK][ReasonNone]...)
		}
		c := &authCtx[P]{Context: ctx, principal: p}
		if a.cfg.observer != nil {
			a.cfg.observer(r, c.res)
		}
		next.ServeHTTP(w, r.WithContext(c))
		return
	}
	res := a.failed
	res.Reason, res.Err = reason, err
	a.results.Add(a.index[res.Outcome][reason], 1)
	if span != nil {
		span.SetAttributes(a.spanAttr[res.Outcome][reason]...)
	}
	switch reason {
	case ReasonPanic: // logged by call, with the stack
	case ReasonMissing, ReasonCanceled:
		a.logKeys[reason].log(ctx, slog.LevelDebug, func(rec *slog.Record) {
			rec.AddAttrs(slog.String("path", r.URL.Path))
		})
	default:
		a.logKeys[reason].log(ctx, slog.LevelWarn, func(rec *slog.Record) {
			rec.AddAttrs(slog.String("path", r.URL.Path), slog.Any("error", err))
		})
	}
	if a.cfg.observer != nil {
		a.cfg.observer(r, res)
	}
	if a.cfg.required {
		// Set gives each response a slice of its own: a later middleware
		// may edit it in place.
		if reason == ReasonMissing {
			w.Header().Set("Www-Authenticate", a.wwwEmpty)
		} else {
			w.Header().Set("Www-Authenticate", a.wwwAuth)
		}
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	next.ServeHTTP(w, r.WithContext(&authCtx[P]{Context: ctx, res: res}))
}

// call runs verify, recovering a panic, and classifies its error.
func (a *auth[P]) call(ctx context.Context, tok string) (p P, reason Reason, err error) {
	defer func() {
		if v := recover(); v != nil {
			var zero P
			p, err, reason = zero, &PanicError{Value: v}, ReasonPanic
			// Logged here, while the panicking stack is still live, so the
			// stack is only captured if the budget passes the record.
			var st *stackValue
			a.logKeys[ReasonPanic].log(ctx, slog.LevelError, func(rec *slog.Record) {
				st = &stackValue{}
				st.live.Store(true)
				rec.AddAttrs(slog.Any("panic", v), slog.Any("stack", st))
			})
			if st != nil {
				st.live.Store(false)
			}
			if span := telemetry.Recording(ctx); span != nil {
				telemetry.RecordPanic(span, v)
			}
		}
	}()
	p, err = a.verify(ctx, tok)
	if err != nil {
		reason = classify(err)
		if ctx.Err() == context.Canceled {
			reason = ReasonCanceled // the client left: not a verdict on the token
		}
	}
	return p, reason, err
}

// classify maps a verify error to a Reason.
func classify(err error) Reason {
	switch err { // a bare sentinel, the common case: no chain to walk
	case ErrUnsupportedVersion:
		return ReasonUnsupportedVersion
	case ErrExpired:
		return ReasonExpired
	case ErrMalformed:
		return ReasonMalformed
	case ErrInvalid:
		return ReasonInvalid
	}
	switch {
	case errors.Is(err, ErrUnsupportedVersion):
		return ReasonUnsupportedVersion
	case errors.Is(err, ErrExpired):
		return ReasonExpired
	case errors.Is(err, ErrMalformed):
		return ReasonMalformed
	case errors.Is(err, ErrInvalid):
		return ReasonInvalid
	}
	return classifyCompat(err)
}

// extract finds the token and checks its size and bytes. It returns
// ReasonNone with the token, or the reason it cannot be used.
func (a *auth[P]) extract(r *http.Request) (string, Reason) {
	if a.cfg.header != "" {
		switch vs := r.Header[a.cfg.header]; len(vs) {
		case 0:
		case 1:
			return a.fromHeader(vs[0])
		default:
			return "", ReasonMalformed // ambiguous: several token headers
		}
	}
	if a.cfg.cookie != "" {
		return a.fromCookies(r.Header["Cookie"])
	}
	return "", ReasonMissing
}

func (a *auth[P]) fromHeader(v string) (string, Reason) {
	if s := a.cfg.scheme; s != "" {
		n := len(s)
		if len(v) < n || !strings.EqualFold(v[:n], s) {
			return "", ReasonMissing // another scheme
		}
		if len(v) == n {
			return "", ReasonMalformed // "Bearer" without a token
		}
		if v[n] != ' ' && v[n] != '\t' {
			return "", ReasonMissing // "Bearerx": another scheme
		}
		v = strings.TrimLeft(v[n:], " \t")
	}
	return a.check(v, ReasonMalformed)
}

// check validates a token's size and bytes; empty gives ifEmpty.
func (a *auth[P]) check(tok string, ifEmpty Reason) (string, Reason) {
	if tok == "" {
		return "", ifEmpty
	}
	if len(tok) > a.cfg.maxSize {
		return "", ReasonOversized
	}
	for i := 0; i < len(tok); i++ {
		if c := tok[i]; c <= ' ' || c >= 0x7f {
			return "", ReasonMalformed // tokens are visible ASCII (RFC 6750 b64token is a subset)
		}
	}
	return tok, ReasonNone
}

// fromCookies finds the first cookie named a.cfg.cookie without allocating
// (http.Request.Cookie parses every cookie).
func (a *auth[P]) fromCookies(lines []string) (string, Reason) {
	name := a.cfg.cookie
	for _, line := range lines {
		for line != "" {
			var part string
			part, line, _ = strings.Cut(line, ";")
			k, v, ok := strings.Cut(strings.Trim(part, " \t"), "=")
			if !ok || k != name {
				continue
			}
			if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
				v = v[1 : len(v)-1]
			}
			return a.check(v, ReasonMissing)
		}
	}
	return "", ReasonMissing
}
