package device

import (
	"go.opentelemetry.io/collector/pdata/pcommon"
)

// Protocol is the value of the device.protocol resource attribute.
type Protocol string

const (
	ProtocolModbus Protocol = "modbus"
	ProtocolOPCUA  Protocol = "opcua"
	ProtocolDLT645 Protocol = "dlt645"
)

// Resource attribute keys of every device.
const (
	AttrDeviceID           = "device.id"
	AttrDeviceProtocol     = "device.protocol"
	AttrDeviceAddress      = "device.address"
	AttrDeviceManufacturer = "device.manufacturer"
	AttrDeviceModelName    = "device.model.name"
)

// Identity is what the resource of a device says about it.
type Identity struct {
	ID           string
	Protocol     Protocol
	Address      string // endpoint plus unit id, meter address or node
	Manufacturer string
	Model        string
	// Attributes are the user's resource_attributes (site, device_group, …); they may not override
	// the device.* keys above.
	Attributes map[string]string
}

// CopyTo writes the identity into res.
func (id Identity) CopyTo(res pcommon.Resource) {
	attrs := res.Attributes()
	attrs.EnsureCapacity(5 + len(id.Attributes))
	for k, v := range id.Attributes {
		attrs.PutStr(k, v)
	}
	attrs.PutStr(AttrDeviceID, id.ID)
	attrs.PutStr(AttrDeviceProtocol, string(id.Protocol))
	if id.Address != "" {
		attrs.PutStr(AttrDeviceAddress, id.Address)
	}
	if id.Manufacturer != "" {
		attrs.PutStr(AttrDeviceManufacturer, id.Manufacturer)
	}
	if id.Model != "" {
		attrs.PutStr(AttrDeviceModelName, id.Model)
	}
}
