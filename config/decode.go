package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// loader carries the state of one Parse call: the problems found so far and what
// decoding learnt about each key, which validation needs to write good messages.
type loader struct {
	env      Env
	problems []Problem

	// Keyed by YAML path ("connectors[0].clientSecret").
	lines   map[string]int      // where the value is
	given   map[string]bool     // the value was not empty (tells "0s" from absent)
	refs    map[string][]string // environment variables the value referred to
	unset   map[string][]string // ... of which were not set
	tainted map[string]bool     // a problem was reported; later checks stay quiet

	// Expanded once per node, so a value reached again through a YAML alias does
	// not report its problems twice.
	scalars map[*yaml.Node]expanded
}

type expanded struct {
	value       string
	refs, unset []string
	bad         bool // a problem was reported on first expansion
}

func newLoader(env Env) *loader {
	return &loader{
		env:     env,
		lines:   map[string]int{},
		given:   map[string]bool{},
		refs:    map[string][]string{},
		unset:   map[string][]string{},
		tainted: map[string]bool{},
		scalars: map[*yaml.Node]expanded{},
	}
}

// add records a problem with key, unless an earlier problem on key or one of its
// parents already explains it (an unset variable, a value of the wrong kind).
func (l *loader) add(key, format string, args ...any) {
	for k := key; ; k = parent(k) {
		if l.tainted[k] {
			return
		}
		if k == "" {
			break
		}
	}
	l.problems = append(l.problems, Problem{Key: key, Line: l.lines[key], Message: fmt.Sprintf(format, args...)})
}

// addAt records a problem found while decoding, at the node's line, and keeps
// later checks on key quiet: its value is missing or wrong for a reason already given.
func (l *loader) addAt(key string, line int, format string, args ...any) {
	l.tainted[key] = true
	l.note(key, line, format, args...)
}

// note records a problem at line that leaves key's value usable (a duplicate or
// unknown key), so later checks still run.
func (l *loader) note(key string, line int, format string, args ...any) {
	l.problems = append(l.problems, Problem{Key: key, Line: line, Message: fmt.Sprintf(format, args...)})
}

// parent returns the key that contains key: "a[0].b" → "a[0]" → "a" → "".
func parent(key string) string {
	i := strings.LastIndexAny(key, ".[")
	if i < 0 {
		return ""
	}
	return key[:i]
}

// name is how messages refer to key.
func name(key string) string {
	if key == "" {
		return "the config"
	}
	return key
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// parseYAML returns the root node of the single document in data (nil for an
// empty file), or the problem that makes data unusable.
func parseYAML(data []byte) (*yaml.Node, *Problem) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
		return nil, nil
	} else if err != nil {
		return nil, syntaxProblem(err)
	}
	var more yaml.Node
	switch err := dec.Decode(&more); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, syntaxProblem(err)
	default:
		return nil, &Problem{Line: more.Line, Message: "the config holds more than one YAML document: remove the --- and what follows"}
	}
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		return doc.Content[0], nil
	}
	return &doc, nil
}

// syntaxProblem turns yaml's "yaml: line 3: did not find expected key" into a
// Problem with its line, so Load can print it as file:3: like the others.
func syntaxProblem(err error) *Problem {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	var line int
	if _, scanErr := fmt.Sscanf(msg, "line %d:", &line); scanErr == nil {
		msg = strings.TrimSpace(msg[strings.IndexByte(msg, ':')+1:])
	}
	// yaml quotes anchor names; an unquoted secret starting with * reads as an
	// alias, so its name may be a secret and is left out.
	if i := strings.Index(msg, "anchor '"); i >= 0 {
		if j := strings.IndexByte(msg[i+len("anchor '"):], '\''); j >= 0 {
			msg = msg[:i+len("anchor")] + msg[i+len("anchor '")+j+1:] + ": quote values that start with * or &"
		}
	}
	return &Problem{Line: line, Message: "the config is not valid YAML: " + msg}
}

var durationType = reflect.TypeFor[Duration]()

// decode stores node n into v, expanding environment variables in scalar values
// and reporting unknown keys and values of the wrong kind. It walks the tree itself
// rather than calling yaml's Decode so that every problem carries its key path,
// all of them are reported, and expansion happens in values only.
func (l *loader) decode(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	l.lines[path] = n.Line
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return // "key:" with nothing after it: the zero value, then the default
	}
	switch {
	case v.Type() == durationType:
		s, ok := l.scalar(n, path)
		if !ok || s == "" {
			return
		}
		d, why := parseDuration(s)
		if why != "" {
			l.addAt(path, n.Line, "%s %s", l.quoted(n, path, s), why)
			return
		}
		l.given[path] = true
		v.SetInt(int64(d))
	case v.Kind() == reflect.String:
		if s, ok := l.scalar(n, path); ok {
			l.given[path] = s != ""
			v.SetString(s)
		}
	case v.Kind() == reflect.Bool:
		s, ok := l.scalar(n, path)
		if !ok {
			return
		}
		switch s {
		case "", "false", "False", "FALSE":
			v.SetBool(false)
		case "true", "True", "TRUE":
			v.SetBool(true)
		default:
			l.addAt(path, n.Line, "%s must be true or false", l.quoted(n, path, s))
		}
	case v.Kind() == reflect.Int || v.Kind() == reflect.Float64:
		s, ok := l.scalar(n, path)
		if !ok || s == "" {
			return
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || (v.Kind() == reflect.Int && f != math.Trunc(f)) {
			l.addAt(path, n.Line, "%s must be a number", l.quoted(n, path, s))
			return
		}
		l.given[path] = true
		if v.Kind() == reflect.Int {
			v.SetInt(int64(f))
		} else {
			v.SetFloat(f)
		}
	case v.Kind() == reflect.Slice:
		if !l.kind(n, yaml.SequenceNode, path) {
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			l.decode(item, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
		v.Set(s)
	case v.Kind() == reflect.Struct:
		l.decodeStruct(n, v, path)
	default:
		panic(fmt.Sprintf("config: no decoding for %s at %s", v.Type(), name(path)))
	}
}

func (l *loader) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if !l.kind(n, yaml.MappingNode, path) {
		return
	}
	fields, names := yamlFields(v.Type())
	// Merge keys (<<: *defaults) first, so keys written here override them as
	// YAML's merge key specifies.
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i]; k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			l.merge(n.Content[i+1], v, path)
		}
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			continue
		}
		if k.Kind != yaml.ScalarNode {
			l.addAt(path, k.Line, "%s has a key that is not a name", name(path))
			continue
		}
		key := join(path, k.Value)
		if first, dup := seen[k.Value]; dup {
			l.note(key, k.Line, "%s is set twice (first on line %d): keep one", key, first)
			continue
		}
		seen[k.Value] = k.Line
		idx, ok := fields[k.Value]
		if !ok {
			l.note(key, k.Line, "%s is not a known key; %s", key, suggest(k.Value, names))
			continue
		}
		l.decode(val, v.Field(idx), key)
	}
}

func (l *loader) merge(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind == yaml.SequenceNode {
		for _, m := range n.Content {
			l.merge(m, v, path)
		}
		return
	}
	l.decodeStruct(n, v, path)
}

// kind reports whether n is of the wanted kind, recording a problem if not.
func (l *loader) kind(n *yaml.Node, want yaml.Kind, path string) bool {
	if n.Kind == want {
		return true
	}
	l.addAt(path, n.Line, "%s must be %s, not %s", name(path), kindName(want), kindName(n.Kind))
	return false
}

func kindName(k yaml.Kind) string {
	switch k {
	case yaml.MappingNode:
		return "a mapping (key: value lines)"
	case yaml.SequenceNode:
		return "a list"
	default:
		return "a single value"
	}
}

// scalar returns the expanded value of scalar node n found at path.
func (l *loader) scalar(n *yaml.Node, path string) (string, bool) {
	if !l.kind(n, yaml.ScalarNode, path) {
		return "", false
	}
	e, done := l.scalars[n]
	if !done {
		e = l.expand(n, path)
		l.scalars[n] = e
	}
	l.refs[path], l.unset[path] = e.refs, e.unset
	if e.bad {
		l.tainted[path] = true
	}
	return e.value, true
}

// quoted shows value s of node n in a message, unless it came from the
// environment: that might be a secret put in the wrong place, so only the
// variable is named.
func (l *loader) quoted(n *yaml.Node, path, s string) string {
	if refs := l.scalars[n].refs; len(refs) > 0 {
		return fmt.Sprintf("%s (from %s)", path, and(refs, "$"))
	}
	return fmt.Sprintf("%s %q", path, s)
}

// expand replaces $NAME, ${NAME} and $$ in n's value. A reference to an unset
// variable becomes "", which validation explains when the key must not be
// empty; when other text surrounds it the value is surely broken (think of
// a password "pa$word"), so that is a problem here. Messages never repeat
// the value or, for secrets, the variable name, which may be part of a secret.
func (l *loader) expand(n *yaml.Node, path string) expanded {
	s := n.Value
	if !strings.Contains(s, "$") {
		return expanded{value: s}
	}
	secret := isSecretKey(path)
	var e expanded
	var b strings.Builder
	for i := 0; i < len(s); {
		if s[i] != '$' || i+1 == len(s) {
			b.WriteByte(s[i])
			i++
			continue
		}
		var ref string
		switch c := s[i+1]; {
		case c == '$':
			b.WriteByte('$')
			i += 2
			continue
		case c == '{':
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 || !isName(s[i+2:i+2+end]) {
				l.addAt(path, n.Line, "%s has a ${ that does not enclose a variable name and }: write ${NAME}, or $$ for a literal $", path)
				return expanded{bad: true}
			}
			ref = s[i+2 : i+2+end]
			i += 2 + end + 1
		case isNameStart(c):
			j := i + 2
			for j < len(s) && isNameChar(s[j]) {
				j++
			}
			ref = s[i+1 : j]
			i = j
		default:
			b.WriteByte('$') // "$5", "$-": not a reference, kept as written
			i++
			continue
		}
		e.refs = appendNew(e.refs, ref)
		if v, ok := l.env(ref); ok {
			b.WriteString(v)
		} else {
			e.unset = appendNew(e.unset, ref)
		}
	}
	e.value = b.String()
	if len(e.unset) > 0 && e.value != "" {
		e.bad = true
		if secret {
			l.addAt(path, n.Line, "%s refers to an environment variable that is not set: set it, or write $$ for a literal $", path)
		} else {
			l.addAt(path, n.Line, "%s refers to %s, which %s not set: set %s, or write $$ for a literal $",
				path, and(e.unset, "$"), isAre(e.unset), and(e.unset, ""))
		}
	}
	return e
}

// isSecretKey reports whether path holds a secret itself (not a file or variable name).
func isSecretKey(path string) bool {
	return strings.HasSuffix(path, ".secret") || strings.HasSuffix(path, ".clientSecret") || path == "storage.dsn"
}

func isName(s string) bool {
	if s == "" || !isNameStart(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if !isNameChar(s[i]) {
			return false
		}
	}
	return true
}

func isNameStart(c byte) bool { return c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isNameChar(c byte) bool  { return isNameStart(c) || '0' <= c && c <= '9' }

func appendNew(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

// and lists names as "A", "A and B" or "A, B and C", each with prefix.
func and(names []string, prefix string) string {
	p := make([]string, len(names))
	for i, n := range names {
		p[i] = prefix + n
	}
	if len(p) == 1 {
		return p[0]
	}
	return strings.Join(p[:len(p)-1], ", ") + " and " + p[len(p)-1]
}

func isAre(names []string) string {
	if len(names) == 1 {
		return "is"
	}
	return "are"
}

// yamlFields maps a struct's YAML keys to field indices, and lists the keys.
func yamlFields(t reflect.Type) (map[string]int, []string) {
	fields := map[string]int{}
	var names []string
	for i := range t.NumField() {
		key, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if key == "" || key == "-" {
			continue
		}
		fields[key] = i
		names = append(names, key)
	}
	return fields, names
}

// suggest helps with an unknown key: the known key it is probably a typo of, or
// the list of known keys.
func suggest(key string, known []string) string {
	best, bestDist := "", 3 // more than two edits away is not a typo
	for _, k := range known {
		if strings.EqualFold(k, key) {
			return "did you mean " + k + "?"
		}
		if d := editDistance(strings.ToLower(key), strings.ToLower(k)); d < bestDist {
			best, bestDist = k, d
		}
	}
	if best != "" {
		return "did you mean " + best + "?"
	}
	sorted := append([]string(nil), known...)
	sort.Strings(sorted)
	return "the keys here are " + strings.Join(sorted, ", ")
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
