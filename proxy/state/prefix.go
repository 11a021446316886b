package state

import (
	"strings"

	"github.com/outrigger/outrigger/proxy/errs"
)

// separator joins the key prefix and the key in the store, as in Dapr.
const separator = "||"

// keyPrefix returns the prefix the store's keyPrefix strategy gives keys
// ("" = none). Strategies, as Dapr 1.14 (the value is lower-cased, a literal
// prefix too):
//
//	"" / appid   <appID>          (no prefix when appID is empty)
//	name         <storeName>
//	namespace    <ns>.<appID>     (appid strategy when ns is empty)
//	none         no prefix
//	other        the literal
func keyPrefix(strategy, storeName, appID, namespace string) (string, error) {
	s := strings.ToLower(strategy)
	if strings.Contains(s, separator) {
		return "", errs.StateIllegalKey.New(s)
	}
	switch s {
	case "", "appid":
		return appID, nil
	case "name":
		return storeName, nil
	case "namespace":
		if appID == "" {
			return "", nil
		}
		if namespace == "" {
			return appID, nil
		}
		return namespace + "." + appID, nil
	case "none":
		return "", nil
	default:
		return s, nil
	}
}

// key returns the store key for the user's key; a key containing "||" is
// rejected with 400 ERR_MALFORMED_REQUEST (reason DAPR_STATE_ILLEGAL_KEY).
func (t *target) key(k string) (string, error) {
	if strings.Contains(k, separator) {
		return "", errs.StateIllegalKey.New(k)
	}
	if t.prefix == "" {
		return k, nil
	}
	return t.prefix + separator + k, nil
}

// originalKey strips the prefix from a store key, as Dapr does: the part
// between the first and a second "||", or the key unchanged if it has none.
func originalKey(k string) string {
	i := strings.Index(k, separator)
	if i < 0 {
		return k
	}
	rest := k[i+len(separator):]
	if j := strings.Index(rest, separator); j >= 0 {
		return rest[:j]
	}
	return rest
}
