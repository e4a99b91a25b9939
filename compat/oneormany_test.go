package compat_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sync/atomic"
	"testing"

	"github.com/blastradius/blastradius/compat"
)

type Item struct {
	ID   int    `json:"id"`
	Name string `json:"name"`
}

// oneOrManyDocs also seed FuzzOneOrMany.
var oneOrManyDocs = []string{
	`{"id":1,"name":"a"}`,
	`[{"id":1,"name":"a"},{"id":2,"name":"b"}]`,
	`[]`,
	`null`,
	` [ {"id":3} ] `,
	`[null]`,
	`{}`,
	`"x"`,
	`[1]`,
	`[{"id":1}`,
	`nul`,
	``,
}

func TestOneOrMany(t *testing.T) {
	tests := []struct {
		in    string
		items []Item
		shape compat.Shape
		err   bool
	}{
		{in: oneOrManyDocs[0], items: []Item{{1, "a"}}, shape: compat.One},
		{in: oneOrManyDocs[1], items: []Item{{1, "a"}, {2, "b"}}, shape: compat.Many},
		{in: oneOrManyDocs[2], items: []Item{}, shape: compat.Many},
		{in: oneOrManyDocs[3], items: nil, shape: compat.Null},
		{in: oneOrManyDocs[4], items: []Item{{ID: 3}}, shape: compat.Many},
		{in: oneOrManyDocs[5], items: []Item{{}}, shape: compat.Many},
		{in: oneOrManyDocs[6], items: []Item{{}}, shape: compat.One},
		{in: oneOrManyDocs[7], err: true},
		{in: oneOrManyDocs[8], err: true},
		{in: oneOrManyDocs[9], err: true},
		{in: oneOrManyDocs[10], err: true},
		{in: oneOrManyDocs[11], err: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			o := compat.OneOrMany[Item]{Items: []Item{{ID: 99}}, Shape: compat.One}
			err := o.UnmarshalJSON([]byte(tt.in))
			if tt.err {
				if err == nil {
					t.Fatalf("no error, got %+v", o)
				}
				if !reflect.DeepEqual(o, compat.OneOrMany[Item]{Items: []Item{{ID: 99}}, Shape: compat.One}) {
					t.Errorf("changed on error: %+v", o)
				}
				return
			}
			if err != nil || o.Shape != tt.shape || !reflect.DeepEqual(o.Items, tt.items) {
				t.Fatalf("got %+v, %v; want %v %+v", o, err, tt.shape, tt.items)
			}
			// Marshal writes the shape it saw; decoding that again gives the same value.
			out, err := json.Marshal(o)
			if err != nil {
				t.Fatal(err)
			}
			var back compat.OneOrMany[Item]
			if err := json.Unmarshal(out, &back); err != nil || !reflect.DeepEqual(back, o) {
				t.Errorf("round trip via %s = %+v, %v", out, back, err)
			}
		})
	}
}

func TestOneOrManyMarshal(t *testing.T) {
	tests := []struct {
		in   compat.OneOrMany[int]
		want string
	}{
		{compat.OneOrMany[int]{Items: []int{1}, Shape: compat.One}, `1`},
		{compat.OneOrMany[int]{Items: []int{1, 2}, Shape: compat.One}, `[1,2]`},
		{compat.OneOrMany[int]{Items: []int{1}, Shape: compat.Many}, `[1]`},
		{compat.OneOrMany[int]{Shape: compat.Null}, `null`},
		{compat.OneOrMany[int]{}, `[]`},
		{compat.OneOrMany[int]{Items: []int{4}}, `[4]`},
	}
	for _, tt := range tests {
		got, err := json.Marshal(tt.in)
		if err != nil || string(got) != tt.want {
			t.Errorf("Marshal(%+v) = %s, %v; want %s", tt.in, got, err, tt.want)
		}
	}
	for s, want := range map[compat.Shape]string{compat.Unset: "unset", compat.Null: "null", compat.One: "one", compat.Many: "many", 9: "unset"} {
		if s.String() != want {
			t.Errorf("Shape(%d) = %q, want %q", s, s.String(), want)
		}
	}
}

// TestI3ArrayToObject replays incident I3: an API's items field changes
// from an array (API v1) to a single object (API v2) in the middle of the
// day. A consumer that decodes items with OneOrMany keeps working and counts
// the shapes it saw; the consumer that was missed breaks.
func TestI3ArrayToObject(t *testing.T) {
	var apiV2 atomic.Bool
	next := atomic.Int64{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := next.Add(1)
		w.Header().Set("Content-Type", "application/json")
		if apiV2.Load() {
			fmt.Fprintf(w, `{"items":{"id":%d,"name":"feature-%d"}}`, id, id)
			return
		}
		fmt.Fprintf(w, `{"items":[{"id":%d,"name":"feature-%d"},{"id":%d,"name":"extra"}]}`, id, id, -id)
	}))
	defer srv.Close()
	client := srv.Client()

	get := func(t *testing.T) []byte {
		t.Helper()
		resp, err := client.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var raw json.RawMessage
		if err := json.NewDecoder(resp.Body).Decode(&raw); err != nil {
			t.Fatal(err)
		}
		return raw
	}

	type tolerant struct {
		Items compat.OneOrMany[Item] `json:"items"`
	}
	type missed struct {
		Items []Item `json:"items"`
	}
	shapes := map[compat.Shape]int{}
	var firstIDs []int
	missedFailures := 0
	for i := range 12 {
		if i == 7 {
			apiV2.Store(true) // the producer ships the change
		}
		body := get(t)
		var tr tolerant
		if err := json.Unmarshal(body, &tr); err != nil {
			t.Fatalf("request %d: tolerant consumer: %v", i, err)
		}
		shapes[tr.Items.Shape]++
		if len(tr.Items.Items) == 0 {
			t.Fatalf("request %d: no items", i)
		}
		firstIDs = append(firstIDs, tr.Items.Items[0].ID)
		if want := fmt.Sprint("feature-", i+1); tr.Items.Items[0].Name != want {
			t.Errorf("request %d: first item %+v, want %s", i, tr.Items.Items[0], want)
		}

		var mr missed
		if err := json.Unmarshal(body, &mr); err != nil {
			missedFailures++
		}
	}
	if want := map[compat.Shape]int{compat.Many: 7, compat.One: 5}; !reflect.DeepEqual(shapes, want) {
		t.Errorf("shapes = %v, want %v", shapes, want)
	}
	if want := []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}; !reflect.DeepEqual(firstIDs, want) {
		t.Errorf("first ids = %v", firstIDs)
	}
	if missedFailures != 5 {
		t.Errorf("the missed consumer failed %d times, want 5 (every API v2 response)", missedFailures)
	}
}
