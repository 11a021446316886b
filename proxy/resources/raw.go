package resources

// The raw* types mirror Dapr's CRD JSON shapes; documents are decoded into
// them and then converted to the exported types.

type rawObjectMeta struct {
	Name        string         `json:"name"`
	Namespace   string         `json:"namespace"`
	Labels      map[string]any `json:"labels"`
	Annotations map[string]any `json:"annotations"`
	UID         string         `json:"uid"`
}

type rawHeader struct {
	APIVersion string        `json:"apiVersion"`
	Kind       string        `json:"kind"`
	Metadata   rawObjectMeta `json:"metadata"`
	Scopes     []string      `json:"scopes"`
}

type rawAuth struct {
	SecretStore string `json:"secretStore"`
}

type rawSecretKeyRef struct {
	Name string `json:"name"`
	Key  string `json:"key"`
}

type rawNameValue struct {
	Name         string           `json:"name"`
	Value        scalar           `json:"value"`
	SecretKeyRef *rawSecretKeyRef `json:"secretKeyRef"`
	EnvRef       string           `json:"envRef"`
}

type rawComponent struct {
	APIVersion string        `json:"apiVersion"`
	Kind       string        `json:"kind"`
	Metadata   rawObjectMeta `json:"metadata"`
	Spec       struct {
		Type         string         `json:"type"`
		Version      string         `json:"version"`
		IgnoreErrors bool           `json:"ignoreErrors"`
		Metadata     []rawNameValue `json:"metadata"`
		InitTimeout  string         `json:"initTimeout"`
	} `json:"spec"`
	Auth   rawAuth  `json:"auth"`
	Scopes []string `json:"scopes"`
}

type rawBulkSubscribe struct {
	Enabled            bool  `json:"enabled"`
	MaxMessagesCount   int32 `json:"maxMessagesCount"`
	MaxAwaitDurationMs int32 `json:"maxAwaitDurationMs"`
}

type rawSubscriptionV1 struct {
	APIVersion string        `json:"apiVersion"`
	Kind       string        `json:"kind"`
	Metadata   rawObjectMeta `json:"metadata"`
	Spec       struct {
		Pubsubname      string            `json:"pubsubname"`
		Topic           string            `json:"topic"`
		Metadata        map[string]scalar `json:"metadata"`
		Route           string            `json:"route"`
		DeadLetterTopic string            `json:"deadLetterTopic"`
		BulkSubscribe   rawBulkSubscribe  `json:"bulkSubscribe"`
	} `json:"spec"`
	Scopes []string `json:"scopes"`
}

type rawSubscriptionV2 struct {
	APIVersion string        `json:"apiVersion"`
	Kind       string        `json:"kind"`
	Metadata   rawObjectMeta `json:"metadata"`
	Spec       struct {
		Pubsubname string            `json:"pubsubname"`
		Topic      string            `json:"topic"`
		Metadata   map[string]scalar `json:"metadata"`
		Routes     struct {
			Rules []struct {
				Match string `json:"match"`
				Path  string `json:"path"`
			} `json:"rules"`
			Default string `json:"default"`
		} `json:"routes"`
		DeadLetterTopic string           `json:"deadLetterTopic"`
		BulkSubscribe   rawBulkSubscribe `json:"bulkSubscribe"`
	} `json:"spec"`
	Scopes []string `json:"scopes"`
}

type rawPolicyNames struct {
	Timeout        string `json:"timeout"`
	Retry          string `json:"retry"`
	CircuitBreaker string `json:"circuitBreaker"`
}

type rawResiliency struct {
	APIVersion string        `json:"apiVersion"`
	Kind       string        `json:"kind"`
	Metadata   rawObjectMeta `json:"metadata"`
	Spec       struct {
		Policies struct {
			Timeouts map[string]string `json:"timeouts"`
			Retries  map[string]struct {
				Policy      string `json:"policy"`
				Duration    string `json:"duration"`
				MaxInterval string `json:"maxInterval"`
				MaxRetries  *int   `json:"maxRetries"`
				// Outrigger extensions.
				Matching *struct {
					HTTPStatusCodes scalar `json:"httpStatusCodes"`
					GRPCStatusCodes scalar `json:"gRPCStatusCodes"`
				} `json:"matching"`
				Budget *struct {
					Percent             *float64 `json:"percent"`
					MinRetriesPerSecond *float64 `json:"minRetriesPerSecond"`
				} `json:"budget"`
			} `json:"retries"`
			CircuitBreakers map[string]struct {
				MaxRequests int    `json:"maxRequests"`
				Interval    string `json:"interval"`
				Timeout     string `json:"timeout"`
				Trip        string `json:"trip"`
			} `json:"circuitBreakers"`
			OutlierDetections map[string]struct { // Outrigger extension
				ConsecutiveFailures *int     `json:"consecutiveFailures"`
				BaseEjectionTime    scalar   `json:"baseEjectionTime"`
				MaxEjectionTime     scalar   `json:"maxEjectionTime"`
				MaxEjectionPercent  *float64 `json:"maxEjectionPercent"`
			} `json:"outlierDetections"`
		} `json:"policies"`
		Targets struct {
			Apps map[string]struct {
				Timeout                 string `json:"timeout"`
				Retry                   string `json:"retry"`
				CircuitBreaker          string `json:"circuitBreaker"`
				CircuitBreakerCacheSize int    `json:"circuitBreakerCacheSize"`
				OutlierDetection        string `json:"outlierDetection"` // Outrigger extension
			} `json:"apps"`
			Actors map[string]struct {
				Timeout                 string `json:"timeout"`
				Retry                   string `json:"retry"`
				CircuitBreaker          string `json:"circuitBreaker"`
				CircuitBreakerScope     string `json:"circuitBreakerScope"`
				CircuitBreakerCacheSize int    `json:"circuitBreakerCacheSize"`
			} `json:"actors"`
			Components map[string]struct {
				Inbound  rawPolicyNames `json:"inbound"`
				Outbound rawPolicyNames `json:"outbound"`
			} `json:"components"`
		} `json:"targets"`
	} `json:"spec"`
	Scopes []string `json:"scopes"`
}

type rawTLSDocument struct {
	Value        *scalar          `json:"value"`
	SecretKeyRef *rawSecretKeyRef `json:"secretKeyRef"`
}

type rawHTTPEndpoint struct {
	APIVersion string        `json:"apiVersion"`
	Kind       string        `json:"kind"`
	Metadata   rawObjectMeta `json:"metadata"`
	Spec       struct {
		BaseURL   string         `json:"baseUrl"`
		Headers   []rawNameValue `json:"headers"`
		ClientTLS *struct {
			RootCA        *rawTLSDocument `json:"rootCA"`
			Certificate   *rawTLSDocument `json:"certificate"`
			PrivateKey    *rawTLSDocument `json:"privateKey"`
			Renegotiation any             `json:"renegotiation"`
		} `json:"clientTLS"`
	} `json:"spec"`
	Auth   rawAuth  `json:"auth"`
	Scopes []string `json:"scopes"`
}
