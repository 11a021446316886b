package resources

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"go.yaml.in/yaml/v3"
)

const (
	apiV1Alpha1 = "dapr.io/v1alpha1"
	apiV2Alpha1 = "dapr.io/v2alpha1"
)

// Load reads every *.yaml and *.yml file in each of dirs (not recursively)
// and returns the manifests that apply to appID. A directory that does not
// exist is a warning. log receives one WARN line per Warning and DEBUG lines
// for manifests filtered out by scopes or namespace; it may be nil.
func Load(ctx context.Context, dirs []string, appID string, log *slog.Logger) (*Set, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	l := &loader{
		appID:     appID,
		namespace: os.Getenv("NAMESPACE"),
		podName:   os.Getenv("POD_NAME"),
		log:       log,
		set:       &Set{},
		seen:      map[string]map[string]string{},
	}
	for _, dir := range dirs {
		entries, err := os.ReadDir(dir)
		if errors.Is(err, fs.ErrNotExist) {
			l.warn(dir, 0, "resources path does not exist")
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read resources path %s: %w", dir, err)
		}
		for _, e := range entries {
			ext := strings.ToLower(filepath.Ext(e.Name()))
			if e.IsDir() || (ext != ".yaml" && ext != ".yml") {
				continue
			}
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			if err := l.loadFile(filepath.Join(dir, e.Name())); err != nil {
				return nil, err
			}
		}
	}
	return l.set, nil
}

type loader struct {
	appID     string
	namespace string // $NAMESPACE
	podName   string // $POD_NAME
	log       *slog.Logger
	set       *Set
	seen      map[string]map[string]string // kind → name → location
}

func (l *loader) warn(file string, line int, format string, args ...any) {
	w := Warning{File: file, Line: line, Message: fmt.Sprintf(format, args...)}
	l.set.Warnings = append(l.set.Warnings, w)
	l.log.Warn("resource file: "+w.Message, "file", file, "line", line)
}

// document is one parsed YAML document of a file.
type document struct {
	file string
	root *yaml.Node
	json []byte
	hdr  rawHeader
}

func (d *document) line() int { return d.root.Line }

func (d *document) errorf(format string, args ...any) error {
	return fmt.Errorf("%s: %s", location(d.file, d.line()), fmt.Sprintf(format, args...))
}

func (l *loader) loadFile(file string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("read resource file: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: invalid YAML: %w", file, err)
		}
		if len(n.Content) == 0 {
			continue
		}
		root := n.Content[0]
		if root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null" {
			continue // empty document, e.g. a trailing "---"
		}
		if root.Kind != yaml.MappingNode {
			return fmt.Errorf("%s: document is not a mapping", location(file, root.Line))
		}
		d := &document{file: file, root: root}
		if d.json, err = toJSON(root); err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		if err := decodeJSON(d.json, &d.hdr); err != nil {
			return d.errorf("%v", err)
		}
		if err := l.loadDocument(d); err != nil {
			return err
		}
	}
}

func (l *loader) loadDocument(d *document) error {
	switch d.hdr.Kind {
	case "Component":
		if !l.checkVersion(d, apiV1Alpha1) {
			return nil
		}
		return l.component(d)
	case "Subscription":
		if !l.checkVersion(d, apiV1Alpha1, apiV2Alpha1) {
			return nil
		}
		return l.subscription(d)
	case "Resiliency":
		if !l.checkVersion(d, apiV1Alpha1) {
			return nil
		}
		return l.resiliency(d)
	case "HTTPEndpoint":
		if !l.checkVersion(d, apiV1Alpha1) {
			return nil
		}
		return l.httpEndpoint(d)
	case "Configuration":
		l.warn(d.file, d.line(), "Configuration %q in a resources path ignored: pass it with --config", d.hdr.Metadata.Name)
	case "":
		l.warn(d.file, d.line(), "document without kind ignored")
	default:
		l.warn(d.file, d.line(), "kind %q (%s) not handled; ignored", d.hdr.Kind, d.hdr.APIVersion)
	}
	return nil
}

func (l *loader) checkVersion(d *document, want ...string) bool {
	if slices.Contains(want, d.hdr.APIVersion) {
		return true
	}
	l.warn(d.file, d.line(), "%s %q has apiVersion %q, want %s; ignored",
		d.hdr.Kind, d.hdr.Metadata.Name, d.hdr.APIVersion, strings.Join(want, " or "))
	return false
}

// decode decodes the document into raw, warns about unknown fields and
// checks metadata.name.
func (l *loader) decode(d *document, raw any) error {
	if err := decodeJSON(d.json, raw); err != nil {
		return d.errorf("%s %q: %v", d.hdr.Kind, d.hdr.Metadata.Name, err)
	}
	unknownFields(d.root, reflect.TypeOf(raw), "", func(line int, field string) {
		l.warn(d.file, line, "unknown field %q in %s %q ignored", field, d.hdr.Kind, d.hdr.Metadata.Name)
	})
	if d.hdr.Metadata.Name == "" {
		return d.errorf("%s without metadata.name", d.hdr.Kind)
	}
	return nil
}

// applies reports whether the manifest is for this sidecar: its scopes list
// the app id (or are empty) and, when $NAMESPACE is set, its namespace (if
// any) matches.
func (l *loader) applies(d *document) bool {
	h := d.hdr
	if l.namespace != "" && h.Metadata.Namespace != "" && h.Metadata.Namespace != l.namespace {
		l.log.Debug("resource skipped: other namespace", "kind", h.Kind, "name", h.Metadata.Name,
			"namespace", h.Metadata.Namespace, "file", d.file)
		return false
	}
	if len(h.Scopes) > 0 && !slices.Contains(h.Scopes, l.appID) {
		l.log.Debug("resource skipped: not scoped to this app", "kind", h.Kind, "name", h.Metadata.Name,
			"scopes", h.Scopes, "file", d.file)
		return false
	}
	return true
}

// unique records the manifest's name for its kind; a second one is an error.
func (l *loader) unique(d *document) error {
	kind, name := d.hdr.Kind, d.hdr.Metadata.Name
	if l.seen[kind] == nil {
		l.seen[kind] = map[string]string{}
	}
	if prev, ok := l.seen[kind][name]; ok {
		return d.errorf("duplicate %s name %q (first defined at %s)", kind, name, prev)
	}
	l.seen[kind][name] = location(d.file, d.line())
	return nil
}

func (l *loader) component(d *document) error {
	var raw rawComponent
	if err := l.decode(d, &raw); err != nil {
		return err
	}
	if raw.Spec.Type == "" {
		return d.errorf("Component %q without spec.type", raw.Metadata.Name)
	}
	timeout := DefaultInitTimeout
	if raw.Spec.InitTimeout != "" {
		t, err := time.ParseDuration(raw.Spec.InitTimeout)
		if err != nil || t <= 0 {
			return d.errorf("Component %q: spec.initTimeout %q is not a positive duration such as 5s",
				raw.Metadata.Name, raw.Spec.InitTimeout)
		}
		timeout = t
	}
	if !l.applies(d) {
		return nil
	}
	if err := l.unique(d); err != nil {
		return err
	}
	md, err := l.metadata(d, raw.Spec.Metadata)
	if err != nil {
		return d.errorf("Component %q: %v", raw.Metadata.Name, err)
	}
	l.set.Components = append(l.set.Components, Component{
		Name:            raw.Metadata.Name,
		Namespace:       raw.Metadata.Namespace,
		Type:            raw.Spec.Type,
		Version:         raw.Spec.Version,
		InitTimeout:     timeout,
		IgnoreErrors:    raw.Spec.IgnoreErrors,
		Metadata:        md,
		AuthSecretStore: raw.Auth.SecretStore,
		Scopes:          raw.Scopes,
		File:            d.file,
		Line:            d.line(),
	})
	return nil
}

// metadata converts name/value items, reading envRef and expanding templates.
func (l *loader) metadata(d *document, items []rawNameValue) ([]MetadataItem, error) {
	out := make([]MetadataItem, 0, len(items))
	for _, it := range items {
		m := MetadataItem{Name: it.Name, Value: string(it.Value), EnvRef: it.EnvRef}
		if it.SecretKeyRef != nil {
			m.SecretKeyRef = &SecretKeyRef{Name: it.SecretKeyRef.Name, Key: it.SecretKeyRef.Key}
		}
		if it.EnvRef != "" {
			if envAllowed(it.EnvRef) {
				m.Value = os.Getenv(it.EnvRef)
			} else {
				l.warn(d.file, d.line(), "metadata %q: envRef %q not allowed (DAPR_* and APP_API_TOKEN are never exposed); left empty",
					it.Name, it.EnvRef)
				m.Value = ""
			}
		}
		v, err := l.expand(m.Value)
		if err != nil {
			return nil, fmt.Errorf("metadata %q: %w", it.Name, err)
		}
		m.Value = v
		out = append(out, m)
	}
	return out, nil
}

// envAllowed is Dapr's denylist for envRef.
func envAllowed(key string) bool {
	k := strings.ToUpper(key)
	return k != "" && k != "APP_API_TOKEN" && !strings.HasPrefix(k, "DAPR_") && !strings.Contains(k, " ")
}

// expand replaces {uuid} (a new one per occurrence), {podName}, {namespace}
// and {appID}. As in Dapr, {namespace} is "<namespace>.<app id>".
func (l *loader) expand(v string) (string, error) {
	if !strings.Contains(v, "{") {
		return v, nil
	}
	for strings.Contains(v, "{uuid}") {
		v = strings.Replace(v, "{uuid}", uuid.NewString(), 1)
	}
	if strings.Contains(v, "{podName}") {
		if l.podName == "" {
			return "", errors.New("refers to {podName} but POD_NAME is not set")
		}
		v = strings.ReplaceAll(v, "{podName}", l.podName)
	}
	v = strings.ReplaceAll(v, "{namespace}", l.namespace+"."+l.appID)
	v = strings.ReplaceAll(v, "{appID}", l.appID)
	return v, nil
}

func (l *loader) subscription(d *document) error {
	var s Subscription
	if d.hdr.APIVersion == apiV1Alpha1 {
		var raw rawSubscriptionV1
		if err := l.decode(d, &raw); err != nil {
			return err
		}
		s = Subscription{
			PubsubName: raw.Spec.Pubsubname, Topic: raw.Spec.Topic, Route: raw.Spec.Route,
			Routes:          Routes{Default: raw.Spec.Route},
			DeadLetterTopic: raw.Spec.DeadLetterTopic, Metadata: stringMap(raw.Spec.Metadata),
			BulkSubscribe: BulkSubscribe(raw.Spec.BulkSubscribe),
		}
	} else {
		var raw rawSubscriptionV2
		if err := l.decode(d, &raw); err != nil {
			return err
		}
		s = Subscription{
			PubsubName: raw.Spec.Pubsubname, Topic: raw.Spec.Topic,
			Routes:          Routes{Default: raw.Spec.Routes.Default},
			DeadLetterTopic: raw.Spec.DeadLetterTopic, Metadata: stringMap(raw.Spec.Metadata),
			BulkSubscribe: BulkSubscribe(raw.Spec.BulkSubscribe),
		}
		for _, r := range raw.Spec.Routes.Rules {
			s.Routes.Rules = append(s.Routes.Rules, Rule{Match: r.Match, Path: r.Path})
		}
	}
	if s.PubsubName == "" || s.Topic == "" {
		return d.errorf("Subscription %q needs spec.pubsubname and spec.topic", d.hdr.Metadata.Name)
	}
	if !l.applies(d) {
		return nil
	}
	if err := l.unique(d); err != nil {
		return err
	}
	s.Name, s.Namespace, s.APIVersion = d.hdr.Metadata.Name, d.hdr.Metadata.Namespace, d.hdr.APIVersion
	s.Scopes, s.File, s.Line = d.hdr.Scopes, d.file, d.line()
	l.set.Subscriptions = append(l.set.Subscriptions, s)
	return nil
}

func stringMap(m map[string]scalar) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = string(v)
	}
	return out
}

func (l *loader) resiliency(d *document) error {
	var raw rawResiliency
	if err := l.decode(d, &raw); err != nil {
		return err
	}
	if !l.applies(d) {
		return nil
	}
	if err := l.unique(d); err != nil {
		return err
	}
	r := Resiliency{
		Name: raw.Metadata.Name, Namespace: raw.Metadata.Namespace, Scopes: raw.Scopes,
		File: d.file, Line: d.line(),
	}
	p := raw.Spec.Policies
	r.Policies.Timeouts = p.Timeouts
	if p.Retries != nil {
		r.Policies.Retries = make(map[string]Retry, len(p.Retries))
		for k, v := range p.Retries {
			rt := Retry{Policy: v.Policy, Duration: v.Duration, MaxInterval: v.MaxInterval, MaxRetries: v.MaxRetries}
			if m := v.Matching; m != nil {
				rt.Matching = &RetryMatching{HTTPStatusCodes: string(m.HTTPStatusCodes), GRPCStatusCodes: string(m.GRPCStatusCodes)}
			}
			if b := v.Budget; b != nil {
				rt.Budget = &RetryBudget{Percent: b.Percent, MinRetriesPerSecond: b.MinRetriesPerSecond}
			}
			r.Policies.Retries[k] = rt
		}
	}
	if p.CircuitBreakers != nil {
		r.Policies.CircuitBreakers = make(map[string]CircuitBreaker, len(p.CircuitBreakers))
		for k, v := range p.CircuitBreakers {
			r.Policies.CircuitBreakers[k] = CircuitBreaker(v)
		}
	}
	if p.OutlierDetections != nil {
		r.Policies.OutlierDetections = make(map[string]OutlierDetection, len(p.OutlierDetections))
		for k, v := range p.OutlierDetections {
			r.Policies.OutlierDetections[k] = OutlierDetection{ConsecutiveFailures: v.ConsecutiveFailures,
				BaseEjectionTime: string(v.BaseEjectionTime), MaxEjectionTime: string(v.MaxEjectionTime),
				MaxEjectionPercent: v.MaxEjectionPercent}
		}
	}
	t := raw.Spec.Targets
	if t.Apps != nil {
		r.Targets.Apps = make(map[string]EndpointPolicyNames, len(t.Apps))
		for k, v := range t.Apps {
			r.Targets.Apps[k] = EndpointPolicyNames{
				PolicyNames:             PolicyNames{Timeout: v.Timeout, Retry: v.Retry, CircuitBreaker: v.CircuitBreaker},
				CircuitBreakerCacheSize: v.CircuitBreakerCacheSize,
				OutlierDetection:        v.OutlierDetection,
			}
		}
	}
	if t.Actors != nil {
		r.Targets.Actors = make(map[string]ActorPolicyNames, len(t.Actors))
		for k, v := range t.Actors {
			r.Targets.Actors[k] = ActorPolicyNames{
				PolicyNames:             PolicyNames{Timeout: v.Timeout, Retry: v.Retry, CircuitBreaker: v.CircuitBreaker},
				CircuitBreakerScope:     v.CircuitBreakerScope,
				CircuitBreakerCacheSize: v.CircuitBreakerCacheSize,
			}
		}
	}
	if t.Components != nil {
		r.Targets.Components = make(map[string]ComponentPolicyNames, len(t.Components))
		for k, v := range t.Components {
			r.Targets.Components[k] = ComponentPolicyNames{Inbound: PolicyNames(v.Inbound), Outbound: PolicyNames(v.Outbound)}
		}
	}
	l.set.Resiliencies = append(l.set.Resiliencies, r)
	return nil
}

func (l *loader) httpEndpoint(d *document) error {
	var raw rawHTTPEndpoint
	if err := l.decode(d, &raw); err != nil {
		return err
	}
	if raw.Spec.BaseURL == "" {
		return d.errorf("HTTPEndpoint %q without spec.baseUrl", raw.Metadata.Name)
	}
	if !l.applies(d) {
		return nil
	}
	if err := l.unique(d); err != nil {
		return err
	}
	headers, err := l.metadata(d, raw.Spec.Headers)
	if err != nil {
		return d.errorf("HTTPEndpoint %q: %v", raw.Metadata.Name, err)
	}
	e := HTTPEndpoint{
		Name: raw.Metadata.Name, Namespace: raw.Metadata.Namespace, BaseURL: raw.Spec.BaseURL,
		Headers: headers, AuthSecretStore: raw.Auth.SecretStore, Scopes: raw.Scopes,
		File: d.file, Line: d.line(),
	}
	if tls := raw.Spec.ClientTLS; tls != nil {
		e.ClientTLS = &ClientTLS{RootCA: tlsDoc(tls.RootCA), Certificate: tlsDoc(tls.Certificate), PrivateKey: tlsDoc(tls.PrivateKey)}
	}
	l.set.HTTPEndpoints = append(l.set.HTTPEndpoints, e)
	return nil
}

func tlsDoc(r *rawTLSDocument) *TLSDocument {
	if r == nil {
		return nil
	}
	d := &TLSDocument{}
	if r.Value != nil {
		d.Value = string(*r.Value)
	}
	if r.SecretKeyRef != nil {
		d.SecretKeyRef = &SecretKeyRef{Name: r.SecretKeyRef.Name, Key: r.SecretKeyRef.Key}
	}
	return d
}
