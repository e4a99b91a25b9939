package edge

import (
	"errors"

	"github.com/blastradius/blastradius/compat"
)

// classifyCompat maps the compat package's sentinels, so a compat.Decoder
// plugs into Auth as edge.Auth(dec.Verify): no version recognized the token,
// or its version is past its sunset, is unsupported_version; a token over the
// decoder's size cap is oversized. Any other error is invalid.
func classifyCompat(err error) Reason {
	switch {
	case errors.Is(err, compat.ErrTooLarge):
		return ReasonOversized
	case errors.Is(err, compat.ErrUnrecognized), errors.Is(err, compat.ErrSunset):
		return ReasonUnsupportedVersion
	}
	return ReasonInvalid
}
