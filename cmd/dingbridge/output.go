package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// printer writes a command's result as a table for people, or as JSON or YAML
// for scripts. JSON and YAML carry the same fields under the same names: YAML
// is made from the JSON.
type printer struct {
	w      io.Writer
	format string
}

func newPrinter(w io.Writer, format string) (*printer, error) {
	switch format {
	case "table", "json", "yaml":
		return &printer{w: w, format: format}, nil
	}
	return nil, usagef("--output %q is unknown: use table, json or yaml", format)
}

// structured writes v as JSON or YAML and reports true, or reports false when
// the caller should print a table.
func (p *printer) structured(v any) (bool, error) {
	if p.format == "table" {
		return false, nil
	}
	raw, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return true, fmt.Errorf("encode output: %w", err)
	}
	if p.format == "json" {
		_, err = fmt.Fprintf(p.w, "%s\n", raw)
		return true, err
	}
	return true, writeYAML(p.w, raw)
}

// writeYAML re-encodes JSON as block-style YAML, keeping the order of fields and
// the exact digits of numbers.
func writeYAML(w io.Writer, jsonDoc []byte) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(jsonDoc, &doc); err != nil {
		return fmt.Errorf("encode output as YAML: %w", err)
	}
	plain(&doc)
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return fmt.Errorf("encode output as YAML: %w", err)
	}
	if err := enc.Close(); err != nil {
		return fmt.Errorf("encode output as YAML: %w", err)
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// plain drops JSON's flow and quoting styles; the encoder quotes where YAML needs it.
func plain(n *yaml.Node) {
	n.Style = 0
	for _, c := range n.Content {
		plain(c)
	}
}

// table starts a tab-separated table with a header row.
func (p *printer) table(header ...string) *tabwriter.Writer {
	tw := tabwriter.NewWriter(p.w, 0, 0, 2, ' ', 0)
	row(tw, header...)
	return tw
}

func row(w io.Writer, cols ...string) {
	safe := make([]string, len(cols))
	for i, c := range cols {
		safe[i] = terminalSafe(c)
	}
	fmt.Fprintln(w, strings.Join(safe, "\t"))
}

// terminalSafe escapes what a terminal would act on rather than show: control
// characters (escape sequences, newlines and tabs that would forge rows or
// columns, carriage returns), bidirectional overrides and line separators. Names
// come from DingTalk and from operators' input; neither may rewrite the screen.
func terminalSafe(s string) string {
	if !strings.ContainsFunc(s, unsafeInTerminal) && utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for i, r := range s {
		switch {
		case r == utf8.RuneError && !strings.HasPrefix(s[i:], "\uFFFD"):
			b.WriteString(`\ufffd`)
		case unsafeInTerminal(r):
			q := strconv.QuoteRune(r) // '\x1b', '\n', '\u202e'
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func unsafeInTerminal(r rune) bool {
	switch {
	case unicode.IsControl(r): // C0, DEL, C1
		return true
	case r >= 0x202A && r <= 0x202E, r >= 0x2066 && r <= 0x2069, r == 0x200E, r == 0x200F, r == 0x061C:
		return true // bidirectional controls (they reorder what follows)
	case r == 0x2028 || r == 0x2029:
		return true
	}
	return false
}

// fields prints "name: value" lines aligned, for one record. A value with
// several lines continues under itself.
func (p *printer) fields(pairs ...string) error {
	tw := tabwriter.NewWriter(p.w, 0, 0, 1, ' ', 0)
	for i := 0; i+1 < len(pairs); i += 2 {
		lines := strings.Split(pairs[i+1], "\n")
		fmt.Fprintf(tw, "%s:\t%s\n", pairs[i], terminalSafe(lines[0]))
		for _, l := range lines[1:] {
			fmt.Fprintf(tw, "\t%s\n", terminalSafe(l))
		}
	}
	return tw.Flush()
}

// line prints one line of prose (table format only).
func (p *printer) line(format string, args ...any) {
	fmt.Fprintf(p.w, format+"\n", args...)
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
