package bolt

import (
	"bytes"
	"testing"
	"time"

	"github.com/wardline/wardline/eventstore"
)

func FuzzDecodeRecord(f *testing.F) {
	f.Add(appendRecord(nil, "room-1", eventstore.EventData{ID: "id", Type: "T", SchemaVersion: 3, Data: []byte(`{}`), Metadata: []byte("m")}))
	f.Add(appendRecord(nil, "", eventstore.EventData{}))
	f.Add([]byte{recordFormat})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := decodeRecord(b)
		if err != nil {
			return
		}
		// Whatever decodes must re-encode to exactly the same bytes.
		again := appendRecord(nil, string(v.stream), eventstore.EventData{
			ID: string(v.id), Type: string(v.typ), SchemaVersion: v.schema, Data: v.data, Metadata: v.meta,
		})
		patchRecord(again, v.at, v.version)
		if !bytes.Equal(again, b) {
			t.Fatalf("decode then encode changed the record:\n in  %x\n out %x", b, again)
		}
		// The batch decoder agrees with the single decoder.
		var d batchDecoder
		if err := d.add(7, b); err != nil {
			t.Fatalf("batch decoder refused what decodeRecord accepted: %v", err)
		}
		e := d.events()[0]
		if e.Stream != string(v.stream) || e.ID != string(v.id) || e.Type != string(v.typ) ||
			!bytes.Equal(e.Data, v.data) || !bytes.Equal(e.Metadata, v.meta) || e.Version != v.version ||
			e.SchemaVersion != v.schema || e.Position != 7 || e.RecordedAt.UnixNano() != v.at {
			t.Fatalf("batch decoder gave %+v for %+v", e, v)
		}
	})
}

func FuzzRecordRoundTrip(f *testing.F) {
	f.Add("room-1", "0190b9a4-7c2e-7b3a-9f00-000000000001", "MessagePosted", 1, []byte(`{"a":1}`), []byte(`{}`), int64(1), uint64(1))
	f.Add("", "", "", -5, []byte(nil), []byte{0xff}, int64(-1), uint64(1<<63))
	f.Fuzz(func(t *testing.T, stream, id, typ string, schema int, data, meta []byte, at int64, version uint64) {
		in := eventstore.EventData{ID: id, Type: typ, SchemaVersion: schema, Data: data, Metadata: meta}
		rec := appendRecord(nil, stream, in)
		if len(rec) > encodedSize(stream, in) {
			t.Fatalf("record of %d bytes exceeds encodedSize %d", len(rec), encodedSize(stream, in))
		}
		patchRecord(rec, at, version)
		v, err := decodeRecord(rec)
		if err != nil {
			t.Fatalf("decode of a fresh record: %v", err)
		}
		if string(v.stream) != stream || string(v.id) != id || string(v.typ) != typ || v.schema != schema ||
			!bytes.Equal(v.data, data) || !bytes.Equal(v.meta, meta) || v.at != at || v.version != version {
			t.Fatalf("round trip gave %+v", v)
		}
		if got, err := recordTime(rec); err != nil || got != at {
			t.Fatalf("recordTime = %d, %v; want %d", got, err, at)
		}
	})
}

func FuzzDecodeStreamMeta(f *testing.F) {
	f.Add(encodeStreamMeta(eventstore.StreamMetadata{MaxAge: time.Minute, MaxCount: 100}))
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeStreamMeta(b)
		if err != nil {
			return
		}
		if m.MaxAge < 0 {
			t.Fatalf("decoded a negative MaxAge %d", m.MaxAge)
		}
		if again := encodeStreamMeta(m); !bytes.Equal(again, b) {
			t.Fatalf("decoded %x as %+v, which encodes as %x", b, m, again)
		}
	})
}

func TestBatchDecoderSharesNothingWithTheSource(t *testing.T) {
	var d batchDecoder
	raws := [][]byte{
		appendRecord(nil, "s", eventstore.EventData{ID: "a", Type: "T", Data: []byte("one")}),
		appendRecord(nil, "s", eventstore.EventData{ID: "b", Type: "T", Metadata: []byte("two")}),
		appendRecord(nil, "other", eventstore.EventData{ID: "c", Type: "U"}),
	}
	for i, r := range raws {
		if err := d.add(eventstore.Position(i+1), r); err != nil {
			t.Fatal(err)
		}
	}
	events := d.events()
	for _, r := range raws {
		clear(r) // the transaction's memory goes away
	}
	want := []struct{ stream, id, typ, data, meta string }{
		{"s", "a", "T", "one", ""}, {"s", "b", "T", "", "two"}, {"other", "c", "U", "", ""},
	}
	for i, w := range want {
		e := events[i]
		if e.Stream != w.stream || e.ID != w.id || e.Type != w.typ || string(e.Data) != w.data || string(e.Metadata) != w.meta {
			t.Errorf("event %d = %+v, want %+v", i, e, w)
		}
	}
	if events[0].Data == nil || events[2].Data != nil {
		t.Errorf("empty data should decode as nil and present data as non-nil: %q %q", events[0].Data, events[2].Data)
	}
}
