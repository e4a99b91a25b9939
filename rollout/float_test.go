package rollout_test

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/blastradius/blastradius/rollout"
)

// TestFloatOptionsRejectNonFinite: every float an option or method of the
// package takes refuses NaN and both infinities, at construction (or as
// SetPercent's error), and SetPercent changes nothing.
func TestFloatOptionsRejectNonFinite(t *testing.T) {
	type use struct {
		name string
		try  func(v float64) error
	}
	newGate := func(opts ...rollout.Option) error {
		g, err := rollout.New("g", opts...)
		if err == nil || g != nil {
			return errors.New("accepted")
		}
		return err
	}
	uses := []use{
		{"WithPercent", func(v float64) error { return newGate(rollout.WithPercent(v)) }},
		{"WithSchedule first step", func(v float64) error {
			return newGate(rollout.WithSchedule(rollout.Step{Percent: v, Hold: time.Hour}, rollout.Step{Percent: 100}))
		}},
		{"WithSchedule last step", func(v float64) error {
			return newGate(rollout.WithSchedule(rollout.Step{Percent: 1, Hold: time.Hour}, rollout.Step{Percent: v}))
		}},
		{"WithConfidence", func(v float64) error { return newGate(rollout.WithGuard(rollout.WithConfidence(v))) }},
		{"WithMaxMismatchRatio", func(v float64) error { return newGate(rollout.WithGuard(rollout.WithMaxMismatchRatio(v))) }},
		{"SetPercent", func(v float64) error {
			g, err := rollout.New("g", rollout.WithPercent(5))
			if err != nil {
				return err
			}
			err = g.SetPercent(v)
			if st := g.Status(); st.Percent != 5 {
				return errors.New("a rejected SetPercent changed the percent")
			}
			if err == nil {
				return errors.New("accepted")
			}
			return err
		}},
	}
	for _, u := range uses {
		for _, v := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
			t.Run(fmt.Sprint(u.name, "(", v, ")"), func(t *testing.T) {
				err := u.try(v)
				if !errors.Is(err, rollout.ErrInvalidConfig) || !strings.HasPrefix(err.Error(), "rollout: ") {
					t.Errorf("%s(%v) = %v, want an error wrapping ErrInvalidConfig", u.name, v, err)
				}
			})
		}
	}
}
