package lock

import (
	"fmt"
	"strings"
)

const (
	keyPrefixAppID = "appid"
	keyPrefixName  = "name"
	keyPrefixNone  = "none"
	keySeparator   = "||"
	keyAPIPrefix   = "lock"
)

// lockKey rewrites a resource id as Dapr's lock API does: the strategy is
// the component's keyPrefix metadata, lower-cased (a Dapr quirk that also
// lower-cases literal prefixes); "" means appid.
//
//	appid (default) lock||<appId>||<id>   (lock||<id> without an app id)
//	name            lock||<store>||<id>
//	none            lock||<id>
//	anything else   lock||<prefix>||<id>
func lockKey(id, strategy, store, appID string) (string, error) {
	if strings.Contains(id, keySeparator) {
		return "", fmt.Errorf("input key/keyPrefix '%s' can't contain '%s'", id, keySeparator)
	}
	strategy = strings.ToLower(strategy)
	if strings.Contains(strategy, keySeparator) {
		return "", fmt.Errorf("input key/keyPrefix '%s' can't contain '%s'", strategy, keySeparator)
	}
	switch strategy {
	case keyPrefixNone:
		return keyAPIPrefix + keySeparator + id, nil
	case keyPrefixName:
		return keyAPIPrefix + keySeparator + store + keySeparator + id, nil
	case keyPrefixAppID, "":
		if appID == "" {
			return keyAPIPrefix + keySeparator + id, nil
		}
		return keyAPIPrefix + keySeparator + appID + keySeparator + id, nil
	default:
		return keyAPIPrefix + keySeparator + strategy + keySeparator + id, nil
	}
}
