// Package main is the bindings.localstorage plugin: create, get, list and
// delete files under a root directory, as Dapr's bindings.localstorage.
//
// Data flow: Init opens rootPath as an os.Root; every Invoke resolves the
// request metadata fileName through it, so "..", absolute paths and
// symlinks leading outside the root are refused (InvalidArgument for names,
// an error for escaping links), and answers with the file's bytes, a JSON
// file list, or {"fileName": …} for create.
package main
