package compat_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"github.com/blastradius/blastradius/compat"
)

// Three token generations, as minted by three releases of an auth service
// (incident I1). All use stdlib HMAC-SHA256.
//
//	v1 (legacy, unversioned): uid:expiry:hexsig
//	v2:                       v2.<base64url JSON>.<base64url sig>
//	v3:                       v3.<key id>.<base64url JSON>.<base64url sig>

var (
	errMalformed    = errors.New("token: malformed")
	errBadSignature = errors.New("token: bad signature")
	errExpired      = errors.New("token: expired")
	errUnknownKey   = errors.New("token: unknown key id")
)

// Claims is the current ("hub") type every generation decodes into.
type Claims struct {
	Subject string
	Expires time.Time
	KeyID   string // v3 only
}

type claimsV1 struct {
	UID    string
	Expiry int64
}

type claimsV2 struct {
	Sub string `json:"sub"`
	Exp int64  `json:"exp"`
}

type claimsV3 struct {
	Sub string `json:"sub"`
	Exp int64  `json:"exp"`
}

var b64 = base64.RawURLEncoding

// tokenKit holds the keys of every generation and the clock expiry is
// checked against.
type tokenKit struct {
	keyV1, keyV2 []byte
	keysV3       map[string][]byte
	now          func() time.Time
}

func newTokenKit(now func() time.Time) *tokenKit {
	return &tokenKit{
		keyV1:  []byte("key-of-the-first-auth-service"),
		keyV2:  []byte("key-of-the-second-auth-service"),
		keysV3: map[string][]byte{"k1": []byte("v3-key-one"), "k2": []byte("v3-key-two")},
		now:    now,
	}
}

func mac(key []byte, parts ...string) []byte {
	m := hmac.New(sha256.New, key)
	for _, p := range parts {
		m.Write([]byte(p))
	}
	return m.Sum(nil)
}

func (k *tokenKit) mintV1(uid string, exp time.Time) string {
	body := uid + ":" + strconv.FormatInt(exp.Unix(), 10)
	return body + ":" + hex.EncodeToString(mac(k.keyV1, body))
}

func (k *tokenKit) mintV2(sub string, exp time.Time) string {
	js, _ := json.Marshal(claimsV2{Sub: sub, Exp: exp.Unix()})
	head := "v2." + b64.EncodeToString(js)
	return head + "." + b64.EncodeToString(mac(k.keyV2, head))
}

func (k *tokenKit) mintV3(kid, sub string, exp time.Time) string {
	js, _ := json.Marshal(claimsV3{Sub: sub, Exp: exp.Unix()})
	key := k.keysV3[kid]
	if key == nil {
		key = []byte("a key the service never had")
	}
	head := "v3." + kid + "." + b64.EncodeToString(js)
	return head + "." + b64.EncodeToString(mac(key, head))
}

// parseV1 decodes the legacy format into its own type.
func (k *tokenKit) parseV1(data []byte) (claimsV1, error) {
	i := bytes.LastIndexByte(data, ':')
	if i < 0 {
		return claimsV1{}, errMalformed
	}
	body, sig := data[:i], data[i+1:]
	uid, exp, ok := bytes.Cut(body, []byte(":"))
	if !ok || len(uid) == 0 || bytes.IndexByte(exp, ':') >= 0 {
		return claimsV1{}, errMalformed
	}
	expiry, err := strconv.ParseInt(string(exp), 10, 64)
	if err != nil {
		return claimsV1{}, errMalformed
	}
	want := mac(k.keyV1, string(body))
	got := make([]byte, hex.DecodedLen(len(sig)))
	if _, err := hex.Decode(got, sig); err != nil {
		return claimsV1{}, errMalformed
	}
	if !hmac.Equal(got, want) {
		return claimsV1{}, errBadSignature
	}
	return claimsV1{UID: string(uid), Expiry: expiry}, nil
}

// verifyHead checks "<head>.<sig>" and returns the decoded JSON payload,
// the last dot-separated field of head.
func verifyHead(data []byte, key []byte) (payload []byte, err error) {
	i := bytes.LastIndexByte(data, '.')
	if i < 0 {
		return nil, errMalformed
	}
	head, sig := data[:i], data[i+1:]
	got := make([]byte, b64.DecodedLen(len(sig)))
	n, err := b64.Decode(got, sig)
	if err != nil {
		return nil, errMalformed
	}
	if !hmac.Equal(got[:n], mac(key, string(head))) {
		return nil, errBadSignature
	}
	enc := head[bytes.LastIndexByte(head, '.')+1:]
	payload = make([]byte, b64.DecodedLen(len(enc)))
	n, err = b64.Decode(payload, enc)
	if err != nil {
		return nil, errMalformed
	}
	return payload[:n], nil
}

func (k *tokenKit) parseV2(data []byte) (claimsV2, error) {
	rest, ok := bytes.CutPrefix(data, []byte("v2."))
	if !ok || bytes.Count(rest, []byte(".")) != 1 {
		return claimsV2{}, errMalformed
	}
	payload, err := verifyHead(data, k.keyV2)
	if err != nil {
		return claimsV2{}, err
	}
	var c claimsV2
	if err := json.Unmarshal(payload, &c); err != nil || c.Sub == "" {
		return claimsV2{}, errMalformed
	}
	return c, nil
}

func (k *tokenKit) parseV3(data []byte) (Claims, error) {
	rest, ok := bytes.CutPrefix(data, []byte("v3."))
	if !ok || bytes.Count(rest, []byte(".")) != 2 {
		return Claims{}, errMalformed
	}
	kid, _, _ := bytes.Cut(rest, []byte("."))
	key := k.keysV3[string(kid)]
	if key == nil {
		return Claims{}, errUnknownKey
	}
	payload, err := verifyHead(data, key)
	if err != nil {
		return Claims{}, err
	}
	var c claimsV3
	if err := json.Unmarshal(payload, &c); err != nil || c.Sub == "" {
		return Claims{}, errMalformed
	}
	return Claims{Subject: c.Sub, Expires: time.Unix(c.Exp, 0).UTC(), KeyID: string(kid)}, nil
}

// Upgrade steps: v1 → v2 → v3, then a check on the hub type.
func v1ToV2(c claimsV1) (claimsV2, error) { return claimsV2{Sub: c.UID, Exp: c.Expiry}, nil }
func v2ToV3(c claimsV2) (Claims, error) {
	return Claims{Subject: c.Sub, Expires: time.Unix(c.Exp, 0).UTC()}, nil
}

func (k *tokenKit) fresh(c Claims) (Claims, error) {
	if !k.now().Before(c.Expires) {
		return Claims{}, errExpired
	}
	return c, nil
}

// versions registers the three generations, newest first. Each decodes
// into its own type and is upgraded hub-and-spoke through compat.Then, ending
// with the expiry check on the hub type. v1 is unversioned, so it has no
// Match: it is the fallback.
func (k *tokenKit) versions(sunsetV1 time.Time) []compat.Version[Claims] {
	return []compat.Version[Claims]{
		{Name: "v3", Match: compat.Prefix("v3."), Decode: compat.Then(k.parseV3, k.fresh)},
		{Name: "v2", Match: compat.Prefix("v2."), Decode: compat.Then(compat.Then(k.parseV2, v2ToV3), k.fresh)},
		{Name: "v1", Decode: compat.Then(compat.Then(compat.Then(k.parseV1, v1ToV2), v2ToV3), k.fresh), Sunset: sunsetV1},
	}
}
