package jsonenc_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/wardline/wardline/projections/internal/jsonenc"
)

func marshal(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestStringWritesWhatEncodingJSONWrites(t *testing.T) {
	for _, s := range []string{
		"", "plain", `quote " backslash \ slash /`, "tab\t nl\n cr\r bs\b ff\f nul\x00 esc\x1b del\x7f",
		"html <b> & </b>", "é ü 日本 😀", "line\u2028sep\u2029para", "bad \xff utf8 \xc3", "\xed\xa0\x80",
	} {
		if got, want := string(jsonenc.String(nil, s)), marshal(t, s); got != want {
			t.Errorf("String(%q) = %s, want %s", s, got, want)
		}
	}
}

func TestTimeWritesWhatTimeMarshalJSONWrites(t *testing.T) {
	for _, tm := range []time.Time{
		{},
		time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC),
		time.Date(2026, 3, 4, 5, 6, 7, 891_000_000, time.UTC),
		time.Date(2026, 3, 4, 5, 6, 7, 891_234_567, time.FixedZone("x", -5*3600)),
	} {
		if got, want := string(jsonenc.Time(nil, tm)), marshal(t, tm); got != want {
			t.Errorf("Time(%v) = %s, want %s", tm, got, want)
		}
	}
}

func TestScalarsWriteWhatEncodingJSONWrites(t *testing.T) {
	if got := string(jsonenc.Uint(nil, 18446744073709551615)); got != marshal(t, uint64(18446744073709551615)) {
		t.Errorf("Uint: %s", got)
	}
	if got := string(jsonenc.Int(nil, -42)); got != marshal(t, -42) {
		t.Errorf("Int: %s", got)
	}
	if got := string(jsonenc.Bool(nil, true)) + string(jsonenc.Bool(nil, false)); got != "truefalse" {
		t.Errorf("Bool: %s", got)
	}
	if got := string(jsonenc.Key(nil, "roomId")); got != `"roomId":` {
		t.Errorf("Key: %s", got)
	}
}

func FuzzString(f *testing.F) {
	for _, s := range []string{"", "a<b>&c", "\u2028", "\xff", "\"\\\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := jsonenc.String(nil, s); string(got) != string(want) {
			t.Fatalf("String(%q) = %s, want %s", s, got, want)
		}
	})
}
