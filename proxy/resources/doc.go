// Package resources is the one place Dapr resource YAML is parsed.
//
// Load reads every *.yaml / *.yml file of each --resources-path directory (not
// recursively, in name order), splits multi-document files, and turns each
// document into a typed value: Component, Subscription (v1alpha1 and
// v2alpha1), Resiliency or HTTPEndpoint. LoadConfiguration does the same for
// the separate --config file.
//
// Data flows in three steps:
//
//  1. parse: go.yaml.in/yaml/v3 builds a node tree per document, which keeps
//     line numbers for messages;
//  2. decode: the node tree is converted to JSON and decoded with
//     encoding/json, so field matching is as lenient as Dapr's
//     (sigs.k8s.io/yaml: case-insensitive keys, scalars accepted where Dapr
//     accepts them); a field we do not know is a Warning naming file:line,
//     never an error;
//  3. filter and resolve: manifests scoped to other app ids or (when the
//     NAMESPACE environment variable is set) other namespaces are dropped,
//     envRef metadata is read from the environment (never DAPR_* or
//     APP_API_TOKEN) and the {uuid}, {appID}, {namespace} and {podName}
//     templates are expanded. secretKeyRef items are kept as they are: the
//     secrets building block resolves them once the secret store is up.
//
// Bad YAML, a document without metadata.name, a Component without
// spec.type and two manifests of the same kind with the same name are
// errors naming the file and line.
package resources
