// Command render renders a Helm chart the way `helm template` does, for CI on
// machines where Helm itself cannot be installed.
//
// It implements the subset of Helm the Confab chart uses, with Helm's own
// semantics:
//
//   - Chart.yaml (apiVersion v2, name, version as SemVer, kubeVersion
//     constraint checked against -kube-version);
//   - values: the chart's values.yaml, then each -f file coalesced on top
//     (maps merge deeply, a null deletes a default), parsed like Helm does
//     (sigs.k8s.io/yaml: numbers are float64), and validated against
//     values.schema.json when the chart has one (gojsonschema, as Helm);
//   - every file under templates/ parsed into one template set named
//     "<chart>/templates/<path>"; files whose name starts with "_" are
//     partials, NOTES.txt is rendered separately;
//   - Go text/template with the sprig function library (minus env and
//     expandenv, as in Helm) and Helm's own functions: include, tpl,
//     required, toYaml, fromYaml, fromYamlArray, toJson, fromJson,
//     fromJsonArray, lookup (always empty, as in `helm template`);
//   - the built-in objects .Values, .Release, .Chart, .Capabilities
//     (KubeVersion, APIVersions.Has), .Template and .Files (Get, GetBytes,
//     Glob, Lines);
//   - missingkey=zero with "<no value>" removed from the output, and
//     whitespace-only documents dropped.
//
// Output: one YAML stream like `helm template` ("---\n# Source: ...").
// -values-out writes the coalesced values as JSON (for schema validation).
//
// Build offline against Debian's packaged Go sources:
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build ./helm/tools/render
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"text/template"

	"github.com/Masterminds/semver"
	sprig "github.com/Masterminds/sprig"
	"github.com/xeipuuv/gojsonschema"
	"sigs.k8s.io/yaml"
)

// docSep splits a template's output into YAML documents, as Helm does.
var docSep = regexp.MustCompile("(?:^|\\s*\n)---\\s*")

// recursionMaxNums is Helm's limit on nested includes of one template.
const recursionMaxNums = 1000

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

type chartMeta struct {
	APIVersion  string `json:"apiVersion"`
	Name        string `json:"name"`
	Version     string `json:"version"`
	AppVersion  string `json:"appVersion"`
	KubeVersion string `json:"kubeVersion"`
	Description string `json:"description"`
	Type        string `json:"type"`
}

// Files is .Files: the chart's files outside templates/.
type Files map[string][]byte

func (f Files) GetBytes(name string) []byte { return f[name] }
func (f Files) Get(name string) string      { return string(f[name]) }

func (f Files) Glob(pattern string) Files {
	out := Files{}
	for name, data := range f {
		if ok, _ := path.Match(pattern, name); ok {
			out[name] = data
		}
	}
	return out
}

func (f Files) Lines(name string) []string {
	s := string(f[name])
	if s == "" {
		return []string{}
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

// VersionSet is .Capabilities.APIVersions.
type VersionSet []string

func (v VersionSet) Has(apiVersion string) bool {
	for _, x := range v {
		if x == apiVersion {
			return true
		}
	}
	return false
}

type kubeVersion struct {
	Version    string
	Major      string
	Minor      string
	GitVersion string
}

type capabilities struct {
	KubeVersion kubeVersion
	APIVersions VersionSet
}

// builtinAPIVersions are the group/versions of a plain cluster of the
// supported Kubernetes versions. CRD groups (monitoring.coreos.com/v1) are
// added with -api-versions, as with `helm template --api-versions`.
var builtinAPIVersions = []string{
	"v1", "apps/v1", "batch/v1", "autoscaling/v1", "autoscaling/v2",
	"policy/v1", "networking.k8s.io/v1", "rbac.authorization.k8s.io/v1",
	"storage.k8s.io/v1", "coordination.k8s.io/v1", "discovery.k8s.io/v1",
	"apiextensions.k8s.io/v1", "admissionregistration.k8s.io/v1",
}

func main() {
	var valueFiles, apiVersions multiFlag
	chartDir := flag.String("chart", "", "chart directory")
	releaseName := flag.String("release", "confab", "release name")
	namespace := flag.String("namespace", "default", "release namespace")
	kube := flag.String("kube-version", "1.30.0", "Kubernetes version for .Capabilities and the kubeVersion check")
	out := flag.String("out", "-", "output file for the manifests (- for stdout)")
	notesOut := flag.String("notes-out", "", "write the rendered NOTES.txt here")
	valuesOut := flag.String("values-out", "", "write the coalesced values here as JSON")
	flag.Var(&valueFiles, "f", "values file (repeatable, later files win)")
	flag.Var(&apiVersions, "api-versions", "extra API group/version available (repeatable)")
	flag.Parse()
	if *chartDir == "" {
		fatalf("-chart is required")
	}
	if err := run(*chartDir, *releaseName, *namespace, *kube, valueFiles, apiVersions, *out, *notesOut, *valuesOut); err != nil {
		fatalf("%v", err)
	}
}

func fatalf(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "render: "+format+"\n", args...)
	os.Exit(1)
}

func run(chartDir, releaseName, namespace, kube string, valueFiles, apiVersions []string, out, notesOut, valuesOut string) error {
	meta, err := loadChart(chartDir)
	if err != nil {
		return err
	}
	kv, err := semver.NewVersion(kube)
	if err != nil {
		return fmt.Errorf("-kube-version %q: %v", kube, err)
	}
	if meta.KubeVersion != "" {
		c, err := semver.NewConstraint(meta.KubeVersion)
		if err != nil {
			return fmt.Errorf("Chart.yaml kubeVersion %q: %v", meta.KubeVersion, err)
		}
		if !c.Check(kv) {
			return fmt.Errorf("chart requires kubeVersion %s, rendering for %s", meta.KubeVersion, kube)
		}
	}

	values, err := readYAMLMap(filepath.Join(chartDir, "values.yaml"))
	if err != nil {
		return err
	}
	for _, f := range valueFiles {
		user, err := readYAMLMap(f)
		if err != nil {
			return err
		}
		values = coalesce(user, values)
	}
	if err := validateSchema(chartDir, values); err != nil {
		return err
	}
	if valuesOut != "" {
		b, err := json.MarshalIndent(values, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(valuesOut, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}

	files, templates, err := loadFiles(chartDir, meta.Name)
	if err != nil {
		return err
	}

	caps := capabilities{
		KubeVersion: kubeVersion{
			Version:    "v" + kv.String(),
			Major:      fmt.Sprint(kv.Major()),
			Minor:      fmt.Sprint(kv.Minor()),
			GitVersion: "v" + kv.String(),
		},
		APIVersions: append(VersionSet{}, append(builtinAPIVersions, apiVersions...)...),
	}
	top := map[string]interface{}{
		"Values": values,
		"Release": map[string]interface{}{
			"Name":      releaseName,
			"Namespace": namespace,
			"IsInstall": true,
			"IsUpgrade": false,
			"Revision":  1,
			"Service":   "Helm",
		},
		"Chart": map[string]interface{}{
			"Name":        meta.Name,
			"Version":     meta.Version,
			"AppVersion":  meta.AppVersion,
			"Description": meta.Description,
			"Type":        meta.Type,
			"KubeVersion": meta.KubeVersion,
			"APIVersion":  meta.APIVersion,
		},
		"Capabilities": caps,
		"Files":        files,
	}

	t := template.New("gotpl").Option("missingkey=zero")
	t.Funcs(funcMap(t))
	names := make([]string, 0, len(templates))
	for name := range templates {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if _, err := t.New(name).Parse(templates[name]); err != nil {
			return err
		}
	}

	var manifests bytes.Buffer
	var notes string
	rendered := 0
	for _, name := range names {
		base := path.Base(name)
		if strings.HasPrefix(base, "_") {
			continue
		}
		data := copyTop(top)
		data["Template"] = map[string]interface{}{
			"Name":     name,
			"BasePath": meta.Name + "/templates",
		}
		var buf strings.Builder
		if err := t.ExecuteTemplate(&buf, name, data); err != nil {
			return err
		}
		s := strings.ReplaceAll(buf.String(), "<no value>", "")
		if base == "NOTES.txt" {
			notes = s
			continue
		}
		// Like Helm (releaseutil.SplitManifests): one document per "---",
		// whitespace-only documents dropped, each under its source.
		for _, doc := range docSep.Split(s, -1) {
			doc = strings.TrimSpace(doc)
			if doc == "" {
				continue
			}
			rendered++
			fmt.Fprintf(&manifests, "---\n# Source: %s\n%s\n", name, doc)
		}
	}
	if rendered == 0 {
		return errors.New("no template rendered anything")
	}
	if notesOut != "" {
		if err := os.WriteFile(notesOut, []byte(notes), 0o644); err != nil {
			return err
		}
	}
	if out == "-" {
		_, err = os.Stdout.Write(manifests.Bytes())
		return err
	}
	return os.WriteFile(out, manifests.Bytes(), 0o644)
}

func copyTop(top map[string]interface{}) map[string]interface{} {
	c := make(map[string]interface{}, len(top)+1)
	for k, v := range top {
		c[k] = v
	}
	return c
}

func loadChart(dir string) (chartMeta, error) {
	var meta chartMeta
	b, err := os.ReadFile(filepath.Join(dir, "Chart.yaml"))
	if err != nil {
		return meta, err
	}
	if err := yaml.UnmarshalStrict(b, &meta); err != nil {
		return meta, fmt.Errorf("Chart.yaml: %v", err)
	}
	if meta.APIVersion != "v2" {
		return meta, fmt.Errorf("Chart.yaml: apiVersion must be v2, got %q", meta.APIVersion)
	}
	if meta.Name == "" || meta.Name != filepath.Base(absOr(dir)) {
		return meta, fmt.Errorf("Chart.yaml: name %q must match the chart directory", meta.Name)
	}
	if _, err := semver.StrictNewVersion(meta.Version); err != nil {
		return meta, fmt.Errorf("Chart.yaml: version %q is not SemVer 2: %v", meta.Version, err)
	}
	return meta, nil
}

func readYAMLMap(file string) (map[string]interface{}, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	m := map[string]interface{}{}
	if err := yaml.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: %v", file, err)
	}
	if m == nil {
		m = map[string]interface{}{}
	}
	return m, nil
}

// coalesce merges src (user values) over dst (defaults) like Helm's
// chartutil.CoalesceTables: maps merge recursively, any other user value
// replaces the default, and a user null deletes the key.
func coalesce(src, dst map[string]interface{}) map[string]interface{} {
	out := make(map[string]interface{}, len(dst))
	for k, v := range dst {
		out[k] = v
	}
	for k, v := range src {
		if v == nil {
			delete(out, k)
			continue
		}
		sm, sok := v.(map[string]interface{})
		dm, dok := out[k].(map[string]interface{})
		if sok && dok {
			out[k] = coalesce(sm, dm)
		} else {
			out[k] = v
		}
	}
	return out
}

// loadFiles reads the chart: templates/ as template sources, everything else
// (but Chart.yaml, values.yaml and what .helmignore lists) as .Files.
func loadFiles(dir, chartName string) (Files, map[string]string, error) {
	ignore := readHelmignore(filepath.Join(dir, ".helmignore"))
	files := Files{}
	templates := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		if ignored(ignore, rel, d.IsDir()) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		switch {
		case strings.HasPrefix(rel, "templates/"):
			templates[chartName+"/"+rel] = string(b)
		case rel == "Chart.yaml" || rel == "values.yaml":
		default:
			files[rel] = b
		}
		return nil
	})
	return files, templates, err
}

func readHelmignore(file string) []string {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil
	}
	var rules []string
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		rules = append(rules, line)
	}
	return rules
}

// ignored applies the simple .helmignore forms: "name", "dir/", "*.ext".
func ignored(rules []string, rel string, isDir bool) bool {
	base := path.Base(rel)
	for _, r := range rules {
		if strings.HasSuffix(r, "/") {
			if isDir && (base == strings.TrimSuffix(r, "/") || rel == strings.TrimSuffix(r, "/")) {
				return true
			}
			continue
		}
		if ok, _ := path.Match(r, base); ok {
			return true
		}
		if ok, _ := path.Match(r, rel); ok {
			return true
		}
	}
	return false
}

func funcMap(t *template.Template) template.FuncMap {
	f := sprig.TxtFuncMap()
	delete(f, "env")
	delete(f, "expandenv")

	included := map[string]int{}
	f["include"] = func(name string, data interface{}) (string, error) {
		if included[name] > recursionMaxNums {
			return "", fmt.Errorf("rendering template has a nested reference name: %s", name)
		}
		included[name]++
		defer func() { included[name]-- }()
		var buf strings.Builder
		if err := t.ExecuteTemplate(&buf, name, data); err != nil {
			return "", err
		}
		return buf.String(), nil
	}
	f["tpl"] = func(text string, data interface{}) (string, error) {
		clone, err := t.Clone()
		if err != nil {
			return "", err
		}
		clone.Option("missingkey=zero")
		clone.Funcs(funcMap(clone))
		tt, err := clone.New("tpl").Parse(text)
		if err != nil {
			return "", fmt.Errorf("tpl: %v", err)
		}
		var buf strings.Builder
		if err := tt.Execute(&buf, data); err != nil {
			return "", fmt.Errorf("tpl: %v", err)
		}
		return strings.ReplaceAll(buf.String(), "<no value>", ""), nil
	}
	f["required"] = func(msg string, v interface{}) (interface{}, error) {
		if v == nil {
			return v, errors.New(msg)
		}
		if s, ok := v.(string); ok && s == "" {
			return v, errors.New(msg)
		}
		return v, nil
	}
	f["toYaml"] = func(v interface{}) string {
		b, err := yaml.Marshal(v)
		if err != nil {
			return ""
		}
		return strings.TrimSuffix(string(b), "\n")
	}
	f["fromYaml"] = func(s string) map[string]interface{} {
		m := map[string]interface{}{}
		if err := yaml.Unmarshal([]byte(s), &m); err != nil {
			m["Error"] = err.Error()
		}
		return m
	}
	f["fromYamlArray"] = func(s string) []interface{} {
		a := []interface{}{}
		if err := yaml.Unmarshal([]byte(s), &a); err != nil {
			a = []interface{}{err.Error()}
		}
		return a
	}
	f["toJson"] = func(v interface{}) string {
		b, err := json.Marshal(v)
		if err != nil {
			return ""
		}
		return string(b)
	}
	f["fromJson"] = func(s string) map[string]interface{} {
		m := map[string]interface{}{}
		if err := json.Unmarshal([]byte(s), &m); err != nil {
			m["Error"] = err.Error()
		}
		return m
	}
	f["fromJsonArray"] = func(s string) []interface{} {
		a := []interface{}{}
		if err := json.Unmarshal([]byte(s), &a); err != nil {
			a = []interface{}{err.Error()}
		}
		return a
	}
	f["lookup"] = func(apiVersion, kind, namespace, name string) (map[string]interface{}, error) {
		return map[string]interface{}{}, nil
	}
	return f
}

func absOr(dir string) string {
	if abs, err := filepath.Abs(dir); err == nil {
		return abs
	}
	return filepath.Clean(dir)
}

// validateSchema checks the coalesced values against values.schema.json,
// as Helm does before rendering.
func validateSchema(chartDir string, values map[string]interface{}) error {
	schema, err := os.ReadFile(filepath.Join(chartDir, "values.schema.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	doc, err := json.Marshal(values)
	if err != nil {
		return err
	}
	result, err := gojsonschema.Validate(gojsonschema.NewBytesLoader(schema), gojsonschema.NewBytesLoader(doc))
	if err != nil {
		return fmt.Errorf("values.schema.json: %v", err)
	}
	if result.Valid() {
		return nil
	}
	var b strings.Builder
	b.WriteString("values don't meet the specifications of the schema(s) in the following chart(s):\n")
	for _, e := range result.Errors() {
		fmt.Fprintf(&b, "- %s\n", e)
	}
	return errors.New(strings.TrimSuffix(b.String(), "\n"))
}
