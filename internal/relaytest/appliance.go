package relaytest

import (
	"github.com/visitrelay/visitrelay/appliance"
)

// ApplianceConfig lets a test change the appliance's config before a
// restart with StopAppliance and StartAppliance.
func (e *Env) ApplianceConfig() *appliance.Config { return &e.applianceCfg }
