package compat_test

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/blastradius/blastradius/compat"
)

// scribbler returns a decoder whose versions write into their input, as a
// careless parser that decodes or lowercases in place does, and whose
// result retains it.
func scribbler(t testing.TB) *compat.Decoder[[]byte] {
	t.Helper()
	d, err := compat.New([]compat.Version[[]byte]{
		{Name: "upper", Match: func(b []byte) bool {
			b[0] = 'X' // a Match that writes, too
			return true
		}, Decode: func(b []byte) ([]byte, error) {
			bytes.ToLower(b) // allocates; the next line does it in place
			for i, c := range b {
				if 'A' <= c && c <= 'Z' {
					b[i] = c + 'a' - 'A'
				}
			}
			return b, nil // T retains the slice
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestVerifyCopiesToken checks that Verify hands the versions a copy of the
// token that they own: writing into it leaves the request header intact,
// and a result that retains it is not changed by later calls.
func TestVerifyCopiesToken(t *testing.T) {
	d := scribbler(t)
	h := http.Header{}
	h.Set("Authorization", "Bearer "+strings.Repeat("TOKEN.ABC", 3))
	const want = "Bearer TOKEN.ABCTOKEN.ABCTOKEN.ABC"
	tok := strings.TrimPrefix(h.Get("Authorization"), "Bearer ")

	first, err := d.Verify(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	if got := h.Get("Authorization"); got != want || tok != strings.Repeat("TOKEN.ABC", 3) {
		t.Fatalf("header after Verify = %q, token %q; want %q", got, tok, want)
	}
	if string(first) != "xoken.abctoken.abctoken.abc" {
		t.Fatalf("first result = %q", first)
	}
	if _, err := d.Verify(context.Background(), strings.Repeat("OTHER.XYZ", 3)); err != nil {
		t.Fatal(err)
	}
	if string(first) != "xoken.abctoken.abctoken.abc" {
		t.Fatalf("first result changed by a later Verify: %q", first)
	}
}

// readOnlyToken is a string constant: the linker puts its bytes in
// read-only memory, so any write into them faults.
const readOnlyToken = "READ.ONLY.TOKEN"

// TestVerifyReadOnlyToken runs Verify of a string constant through versions
// that write into their input. Writing into the constant's bytes would kill
// the process with a fault, which no recover catches, so it runs in a child
// process.
func TestVerifyReadOnlyToken(t *testing.T) {
	if os.Getenv("COMPAT_VERIFY_READONLY") == "1" {
		out, err := scribbler(t).Verify(context.Background(), readOnlyToken)
		if err != nil || string(out) != "xead.only.token" || readOnlyToken != "READ.ONLY.TOKEN" {
			t.Fatalf("Verify = %q, %v", out, err)
		}
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestVerifyReadOnlyToken$", "-test.count=1")
	cmd.Env = append(os.Environ(), "COMPAT_VERIFY_READONLY=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
}
