package pubsub

import (
	"slices"
	"strings"
)

// Component metadata keys that scope topics (Dapr's names).
const (
	propPublishingScopes   = "publishingScopes"
	propSubscriptionScopes = "subscriptionScopes"
	propAllowedTopics      = "allowedTopics"
	propProtectedTopics    = "protectedTopics"
)

// scopes are one broker's topic rules as they apply to this app.
type scopes struct {
	allowed, protected []string
	publish, subscribe []string // topics scoped to this app
}

func scopesOf(props map[string]string, appID string) scopes {
	return scopes{
		allowed:   topicList(prop(props, propAllowedTopics)),
		protected: topicList(prop(props, propProtectedTopics)),
		publish:   scopedTopics(prop(props, propPublishingScopes), appID),
		subscribe: scopedTopics(prop(props, propSubscriptionScopes), appID),
	}
}

// prop finds a property case-insensitively, as Dapr does for these keys.
func prop(props map[string]string, name string) string {
	if v, ok := props[name]; ok {
		return v
	}
	for k, v := range props {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}

// topicList parses "a,b,c" (spaces ignored, duplicates dropped).
func topicList(v string) []string {
	if v == "" {
		return nil
	}
	var out []string
	for _, t := range strings.Split(strings.ReplaceAll(v, " ", ""), ",") {
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out
}

// scopedTopics parses "app1=t1,t2;app2=t3" and returns appID's topics. An app
// listed with no topics ("app1=") gets the single topic "", which allows no
// real topic — Dapr's way of denying everything.
func scopedTopics(v, appID string) []string {
	if v == "" {
		return nil
	}
	var out []string
	for _, entry := range strings.Split(strings.ReplaceAll(v, " ", ""), ";") {
		app, topics, ok := strings.Cut(entry, "=")
		if !ok || app != appID {
			continue
		}
		for _, t := range strings.Split(topics, ",") {
			if !slices.Contains(out, t) {
				out = append(out, t)
			}
		}
	}
	return out
}

// allowed is Dapr's IsOperationAllowed: a topic outside allowedTopics is
// denied; a protected topic, or any topic when the app has scoped topics,
// must be among the app's scoped topics.
func (s scopes) allowedFor(topic string, scoped []string) bool {
	if len(s.allowed) > 0 && !slices.Contains(s.allowed, topic) {
		return false
	}
	if !slices.Contains(s.protected, topic) && len(scoped) == 0 {
		return true
	}
	return slices.Contains(scoped, topic)
}

func (s scopes) canPublish(topic string) bool   { return s.allowedFor(topic, s.publish) }
func (s scopes) canSubscribe(topic string) bool { return s.allowedFor(topic, s.subscribe) }
