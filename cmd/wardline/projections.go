package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/wardline/wardline/eventstore"
	"github.com/wardline/wardline/migrations"
	"github.com/wardline/wardline/projections"
	"github.com/wardline/wardline/projections/presence"
	"github.com/wardline/wardline/projections/rooms"
)

// readModels returns a fresh instance of every projection the server runs.
func readModels() (*rooms.Model, *presence.Model) { return rooms.New(), presence.New() }

func projectionByName(name string) (projections.Projection, error) {
	r, p := readModels()
	for _, proj := range []projections.Projection{r, p} {
		if proj.Name() == name {
			return proj, nil
		}
	}
	return nil, usageError{fmt.Sprintf("unknown projection %q (known: %s, %s)", name, r.Name(), p.Name())}
}

func projectionsConfig(c Config, store eventstore.Store) projections.Config {
	return projections.Config{
		Store:   store,
		Path:    projectionsPath(c),
		Decoder: projections.DecoderFunc(migrations.Decode),
	}
}

// runProjectionsRebuild rebuilds one projection from position zero on a data
// directory no server is using, with a progress bar on a terminal and plain
// progress lines when piped.
func runProjectionsRebuild(ctx context.Context, args []string, stdio IO) error {
	var c Config
	fs := flag.NewFlagSet("wardline projections rebuild", flag.ContinueOnError)
	fs.SetOutput(stdio.Stderr)
	storeFlags(fs, stdio.Getenv, &c)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError{"projections rebuild: want exactly one projection name"}
	}
	proj, err := projectionByName(fs.Arg(0))
	if err != nil {
		return err
	}
	store, err := openStore(ctx, c)
	if err != nil {
		return err
	}
	defer store.Close()

	rep := newProgressReporter(stdio.Stderr, "rebuilding "+proj.Name())
	final, err := projections.RebuildOffline(ctx, projectionsConfig(c, store), proj, rep.update)
	rep.finish()
	if errors.Is(err, projections.ErrLocked) {
		return fmt.Errorf("projections db %s is in use by a running server; stop it first: %w", projectionsPath(c), err)
	}
	if err != nil {
		return fmt.Errorf("projections rebuild %s: %w", proj.Name(), err)
	}
	fmt.Fprintf(stdio.Stdout, "rebuilt %s: %d events up to position %d in %s (%.0f events/s)\n",
		proj.Name(), final.Events, final.Position, final.Elapsed.Round(time.Millisecond), final.Rate)
	return nil
}

// progressReporter draws a bar on a terminal and prints a line every few
// seconds otherwise, so logs of a piped rebuild stay readable.
type progressReporter struct {
	w        io.Writer
	label    string
	bar      *progressbar.ProgressBar
	lastLine time.Time
	last     projections.Progress
}

func newProgressReporter(w io.Writer, label string) *progressReporter {
	r := &progressReporter{w: w, label: label}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		r.bar = progressbar.NewOptions64(-1,
			progressbar.OptionSetWriter(w),
			progressbar.OptionSetDescription(label),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("events"),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionFullWidth(),
		)
	}
	return r
}

func (r *progressReporter) update(p projections.Progress) {
	r.last = p
	if r.bar != nil {
		if int64(p.Head) > 0 && r.bar.GetMax64() != int64(p.Head) {
			r.bar.ChangeMax64(int64(p.Head))
		}
		_ = r.bar.Set64(int64(p.Position))
		return
	}
	if time.Since(r.lastLine) < 2*time.Second {
		return
	}
	r.lastLine = time.Now()
	fmt.Fprintln(r.w, progressLine(r.label, p))
}

func (r *progressReporter) finish() {
	if r.bar != nil {
		_ = r.bar.Finish()
		fmt.Fprintln(r.w)
		return
	}
	if r.last.Events > 0 {
		fmt.Fprintln(r.w, progressLine(r.label, r.last))
	}
}

// progressLine is the plain progress report: position of head, percentage,
// rate and the estimated time left.
func progressLine(label string, p projections.Progress) string {
	pct, eta := 100.0, time.Duration(0)
	if p.Head > 0 {
		pct = 100 * float64(p.Position) / float64(p.Head)
		if p.Position > 0 && p.Position < p.Head {
			eta = time.Duration(float64(p.Elapsed) * float64(p.Head-p.Position) / float64(p.Position))
		}
	}
	return fmt.Sprintf("%s: position %d of %d (%.1f%%), %d events, %.0f events/s, ETA %s",
		label, p.Position, p.Head, pct, p.Events, p.Rate, eta.Round(time.Second))
}

// runProjectionsStatus shows each projection's checkpoint and lag. On a
// data dir a running server holds, it asks that server (/readyz) instead.
func runProjectionsStatus(ctx context.Context, args []string, stdio IO) error {
	var (
		c    Config
		addr string
		asJS bool
	)
	fs := flag.NewFlagSet("wardline projections status", flag.ContinueOnError)
	fs.SetOutput(stdio.Stderr)
	storeFlags(fs, stdio.Getenv, &c)
	stringVar(fs, stdio.Getenv, &addr, "addr", "WARDLINE_ADDR", "127.0.0.1:8080", "address of a running server to ask when the data dir is in use")
	fs.BoolVar(&asJS, "json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	statuses, err := localStatus(ctx, c)
	if errors.Is(err, eventstore.ErrLocked) || errors.Is(err, projections.ErrLocked) {
		statuses, err = remoteStatus(ctx, addr)
		if err != nil {
			return fmt.Errorf("projections status: data dir %s is in use and the server at %s did not answer: %w", c.DataDir, addr, err)
		}
	}
	if err != nil {
		return fmt.Errorf("projections status: %w", err)
	}
	sort.Slice(statuses, func(i, j int) bool { return statuses[i].Name < statuses[j].Name })
	if asJS {
		enc := json.NewEncoder(stdio.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(statuses)
	}
	tw := tabwriter.NewWriter(stdio.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tVERSION\tSTATE\tCHECKPOINT\tHEAD\tLAG")
	for _, s := range statuses {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%d\t%d\n", s.Name, s.Version, s.State, s.Checkpoint, s.Head, s.Lag)
	}
	return tw.Flush()
}

func localStatus(ctx context.Context, c Config) ([]projections.Status, error) {
	store, err := openStore(ctx, c)
	if err != nil {
		return nil, err
	}
	defer store.Close()
	r, p := readModels()
	runner, err := projections.NewRunner(ctx, projectionsConfig(c, store), r, p)
	if err != nil {
		return nil, err
	}
	defer runner.Close()
	return runner.Status(ctx)
}

// readyzBody is what /readyz answers (see serve.go).
type readyzBody struct {
	Ready       bool                 `json:"ready"`
	Projections []projections.Status `json:"projections"`
	Reason      string               `json:"reason,omitempty"`
}

func remoteStatus(ctx context.Context, addr string) ([]projections.Status, error) {
	url := addr
	if !strings.Contains(url, "://") {
		url = "http://" + url
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/readyz", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var body readyzBody
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, fmt.Errorf("read /readyz: %w", err)
	}
	return body.Projections, nil
}
