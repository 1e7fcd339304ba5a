package bolt_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/wardline/wardline/eventstore"
	"github.com/wardline/wardline/eventstore/bolt"
)

func ExampleOpen() {
	dir, err := os.MkdirTemp("", "wardline-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	ctx := context.Background()
	s, err := bolt.Open(ctx, dir)
	if err != nil {
		log.Fatal(err) // errors.Is(err, eventstore.ErrLocked) if another process has it
	}
	defer s.Close()

	res, err := s.Append(ctx, "room-icu-1", eventstore.NoStream, []eventstore.EventData{
		{ID: "0190b9a4-7c2e-7b3a-9f00-000000000001", Type: "RoomCreated", SchemaVersion: 1, Data: []byte(`{"roomId":"icu-1"}`)},
	})
	if err != nil {
		log.Fatal(err)
	}
	events, err := s.ReadStream(ctx, "room-icu-1", 0, eventstore.Forward, 10)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Version, res.LastPosition(), events[0].Type, string(events[0].Data))
	// Output: 1 1 RoomCreated {"roomId":"icu-1"}
}
