package config

import "github.com/perfhound/perfhound/agent/identity"

// ServiceRule is one entry of services: which processes it matches and
// the service (and optionally version) it names them. agent/identity
// defines and applies it; the config only decodes it.
type ServiceRule = identity.Rule
