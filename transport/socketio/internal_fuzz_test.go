package socketio

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
)

// FuzzSplitArray checks the allocation-light array splitter used for event
// dispatch against encoding/json on every valid JSON array.
func FuzzSplitArray(f *testing.F) {
	for _, s := range []string{`[]`, `["a"]`, `[1, "2" ,{"3":[true]}]`, `[ "\"]" , [[]], {"}":"{"} ]`, `[-1.5e3,null,false]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var want []json.RawMessage
		if !json.Valid(b) || jsonKind(b) != '[' || json.Unmarshal(b, &want) != nil {
			return
		}
		got := splitArray(b)
		if len(got) != len(want) {
			t.Fatalf("splitArray(%q) has %d elements, encoding/json %d", b, len(got), len(want))
		}
		for i := range got {
			if !bytes.Equal(bytes.TrimSpace(got[i]), bytes.TrimSpace(want[i])) {
				t.Fatalf("element %d: %q, encoding/json %q", i, got[i], want[i])
			}
		}
	})
}

// FuzzReassemble checks that placeholder reassembly never panics, refuses
// placeholders past the attachments, and keeps other JSON as it was.
func FuzzReassemble(f *testing.F) {
	for _, s := range []string{
		`{"_placeholder":true,"num":0}`, `{"file":{"_placeholder":true,"num":1},"n":2}`,
		`[{"_placeholder":true,"num":-1}]`, `{"_placeholder":true,"num":"0"}`, `"plain"`, `{"_placeholder":false}`,
	} {
		f.Add([]byte(s), uint8(1))
	}
	f.Fuzz(func(t *testing.T, raw []byte, n uint8) {
		if !json.Valid(raw) {
			return
		}
		bins := make([][]byte, n%4)
		for i := range bins {
			bins[i] = []byte{byte(i), 0xff}
		}
		out, err := reassemble(raw, bins)
		checkErr := checkPlaceholders(raw, len(bins))
		if (err == nil) != (checkErr == nil) && len(bins) > 0 {
			t.Fatalf("reassemble says %v, checkPlaceholders says %v for %q", err, checkErr, raw)
		}
		if err != nil {
			if !errors.Is(err, ErrInvalidPacket) {
				t.Fatalf("error %v does not wrap ErrInvalidPacket", err)
			}
			return
		}
		if !json.Valid(out) {
			t.Fatalf("reassembled %q is not JSON", out)
		}
		if !bytes.Contains(raw, []byte(`"_placeholder"`)) && !bytes.Equal(out, raw) {
			t.Fatalf("JSON without placeholders changed: %q became %q", raw, out)
		}
	})
}
