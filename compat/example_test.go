package compat_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/blastradius/blastradius/compat"
	"github.com/blastradius/blastradius/logbudget"
)

// User is the current ("hub") type in the examples.
type User struct {
	ID   int
	Name string
}

// The old format, "id|name", and its upgrade step.
type userV1 struct {
	ID       int
	Nickname string
}

func parseUserV1(b []byte) (userV1, error) {
	id, name, ok := strings.Cut(string(b), "|")
	n, err := strconv.Atoi(id)
	if !ok || err != nil {
		return userV1{}, errors.New("not id|name")
	}
	return userV1{ID: n, Nickname: name}, nil
}

func upgradeUserV1(u userV1) (User, error) { return User{ID: u.ID, Name: u.Nickname}, nil }

// The current format, JSON with "v":2.
func parseUserV2(b []byte) (User, error) {
	var u struct {
		ID   int    `json:"id"`
		Name string `json:"name"`
	}
	err := json.Unmarshal(b, &u)
	return User{ID: u.ID, Name: u.Name}, err
}

func userDecoder() *compat.Decoder[User] {
	dec, err := compat.New([]compat.Version[User]{
		{Name: "v2", Match: compat.JSONField("v", 2), Decode: parseUserV2},
		{Name: "v1", Decode: compat.Then(parseUserV1, upgradeUserV1)},
	}, compat.WithName("users"))
	if err != nil {
		panic(err)
	}
	return dec
}

func ExampleNew() {
	dec, err := compat.New([]compat.Version[User]{
		{Name: "v2", Match: compat.JSONField("v", 2), Decode: parseUserV2},
		{Name: "v1", Decode: compat.Then(parseUserV1, upgradeUserV1)},
	}, compat.WithName("users"), compat.WithMaxSize(1<<10))
	fmt.Println(dec.Name(), err)

	_, err = compat.New([]compat.Version[User]{{Name: "v1"}})
	fmt.Println(errors.Is(err, compat.ErrInvalidConfig), err)
	// Output:
	// users <nil>
	// true compat: invalid config: versions[0] ("v1"): nil Decode
}

func ExampleDecoder_Decode() {
	dec := userDecoder()
	for _, in := range []string{`{"v":2,"id":7,"name":"ada"}`, `7|ada`, `{"v":3,"id":7}`} {
		u, res, err := dec.Decode(context.Background(), []byte(in))
		fmt.Printf("%+v %+v %v\n", u, res, err)
	}
	// Output:
	// {ID:7 Name:ada} {Version:v2 Fallback:false PastSunset:false} <nil>
	// {ID:7 Name:ada} {Version:v1 Fallback:true PastSunset:false} <nil>
	// {ID:0 Name:} {Version: Fallback:false PastSunset:false} compat: unrecognized (decoder users): v1: not id|name
}

func ExampleDecoder_Verify() {
	dec := userDecoder()
	// edge.Auth takes exactly this signature: edge.Auth(dec.Verify).
	var verify func(context.Context, string) (User, error) = dec.Verify
	u, err := verify(context.Background(), "7|ada")
	fmt.Println(u, err)
	_, err = verify(context.Background(), strings.Repeat("x", compat.DefaultMaxSize+1))
	fmt.Println(errors.Is(err, compat.ErrTooLarge))
	// Output:
	// {7 ada} <nil>
	// true
}

func ExampleDecoder_Stats() {
	dec := userDecoder()
	for _, in := range []string{`{"v":2,"id":1}`, `{"v":2,"id":2}`, `3|c`, `nope`} {
		_, _, _ = dec.Decode(context.Background(), []byte(in))
	}
	st := dec.Stats()
	for _, v := range st.Versions {
		fmt.Printf("%s: total %d, ok %d, fallback %d\n", v.Name, v.Total(), v.OK, v.Fallback)
	}
	fmt.Println("unrecognized:", st.Unrecognized)
	// Output:
	// v2: total 2, ok 2, fallback 0
	// v1: total 1, ok 0, fallback 1
	// unrecognized: 1
}

func ExampleWithRejectAfterSunset() {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	versions := []compat.Version[User]{
		{Name: "v2", Match: compat.JSONField("v", 2), Decode: parseUserV2},
		{Name: "v1", Decode: compat.Then(parseUserV1, upgradeUserV1), Sunset: now.Add(-time.Hour)},
	}
	dec, _ := compat.New(versions, compat.WithName("users"),
		compat.WithRejectAfterSunset(true), compat.WithClock(func() time.Time { return now }))
	_, res, err := dec.Decode(context.Background(), []byte("7|ada"))
	fmt.Printf("%+v %v %v\n", res, errors.Is(err, compat.ErrSunset), err)
	// Output:
	// {Version:v1 Fallback:false PastSunset:true} true compat: unrecognized (decoder users): v1: compat: version past sunset
}

func ExampleWithLogger() {
	// One log budget for the whole service (here 1 record per message and
	// reason a minute), handed to every package that logs.
	text := slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey || a.Key == "since" {
			return slog.Attr{} // not reproducible
		}
		return a
	}})
	budget, _ := logbudget.New(text, logbudget.WithKeyAttr("reason"), logbudget.WithLimit(1))
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	dec, _ := compat.New([]compat.Version[User]{
		{Name: "v2", Match: compat.JSONField("v", 2), Decode: parseUserV2},
		{Name: "v1", Decode: compat.Then(parseUserV1, upgradeUserV1), Sunset: now.Add(-time.Hour)},
	}, compat.WithName("users"), compat.WithLogger(slog.New(budget)), compat.WithClock(func() time.Time { return now }))
	for range 3 {
		_, _, _ = dec.Decode(context.Background(), []byte("7|ada"))
	}
	budget.Flush(context.Background()) // on shutdown
	// Output:
	// level=WARN msg="compat: version past sunset accepted" compat.decoder=users compat.version=v1 reason=users/v1 sunset=2025-12-31T23:00:00.000Z
	// level=WARN msg="log budget: records suppressed" message="compat: version past sunset accepted" suppressed=2 reason=users/v1
}

func ExamplePrefix() {
	isV2 := compat.Prefix("v2.")
	fmt.Println(isV2([]byte("v2.abc")), isV2([]byte("v3.abc")))
	// Output: true false
}

func ExampleJSONField() {
	isV2 := compat.JSONField("version", 2)
	for _, doc := range []string{
		`{"data":{"version":1},"version":2}`, // nested members are skipped
		`{"version":"2"}`,                    // a string is not the number 2
		`{"version":2, this is never read`,   // it stops at the member
	} {
		fmt.Println(isV2([]byte(doc)))
	}
	// Output:
	// true
	// false
	// true
}

func ExampleThen() {
	// Hub and spoke: v1 → v2 → v3, one step per format change.
	parseV1 := func(b []byte) (int, error) { return strconv.Atoi(string(b)) } // cents
	v1ToV2 := func(cents int) (float64, error) { return float64(cents) / 100, nil }
	v2ToV3 := func(units float64) (string, error) { return fmt.Sprintf("EUR %.2f", units), nil }

	decodeV1 := compat.Then(compat.Then(parseV1, v1ToV2), v2ToV3)
	fmt.Println(decodeV1([]byte("1999")))
	fmt.Println(decodeV1([]byte("abc")))
	// Output:
	// EUR 19.99 <nil>
	//  strconv.Atoi: parsing "abc": invalid syntax
}

func ExampleOneOrMany() {
	type Response struct {
		Items compat.OneOrMany[User] `json:"items"`
	}
	for _, body := range []string{
		`{"items":[{"ID":1,"Name":"a"},{"ID":2,"Name":"b"}]}`, // API v1: an array
		`{"items":{"ID":3,"Name":"c"}}`,                       // API v2: one object
		`{"items":null}`,
		`{}`,
	} {
		var r Response
		err := json.Unmarshal([]byte(body), &r)
		fmt.Println(r.Items.Shape, r.Items.Items, err)
	}
	// Output:
	// many [{1 a} {2 b}] <nil>
	// one [{3 c}] <nil>
	// null [] <nil>
	// unset [] <nil>
}

func ExampleOneOrMany_MarshalJSON() {
	one, _ := json.Marshal(compat.OneOrMany[int]{Items: []int{1}, Shape: compat.One})
	many, _ := json.Marshal(compat.OneOrMany[int]{Items: []int{1}, Shape: compat.Many})
	fmt.Println(string(one), string(many))
	// Output: 1 [1]
}
