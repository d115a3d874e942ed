package modbusreceiver

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/simonvetter/modbus"

	"github.com/otelcol-iiot/otelcol-iiot/internal/device/devicetest"
	modbussim "github.com/otelcol-iiot/otelcol-iiot/internal/sim/modbus"
)

// The first poll of each device, as it leaves the receiver: resources, the health metrics, every
// reading of the shipped profiles and of hand-written fields with its name, unit, kind, value and
// attributes, a stale reading, a counted exception. Regenerate with
// UPDATE_GOLDEN=1 go test -run TestGolden ./receiver/modbusreceiver and review the diff.
func TestGoldenProfiles(t *testing.T) {
	// The simulated devices at fixed moments: their values are a function of time.
	bank := modbussim.NewBank(1, 2, 3)
	sdm := &modbussim.SDM630{Bank: bank, Unit: 1}
	sdm.E.ImportKWh = 100
	sdm.Update(10, 1)
	inv := &modbussim.Inverter{Bank: bank, Unit: 2, Serial: "SN-42", DayLength: time.Hour}
	inv.Init()
	inv.Update(900, 1)
	dtsu := &modbussim.DTSU666{Bank: bank, Unit: 3}
	dtsu.Update(10, 1)
	addr := startTCPServer(t, bank)

	cfg := loadConfig(t, `
poll: {interval: 2s, timeout: 1s}
profile_files: [`+profilesDir+`eastron-sdm630.yaml, `+profilesDir+`chint-dtsu666.yaml, `+profilesDir+`sunspec-inverter-103.yaml]
connections:
  - endpoint: tcp://`+addr+`
    devices:
      - {id: sdm, unit_id: 1, profile: eastron_sdm630, resource_attributes: {site: lab}}
      - {id: inv, unit_id: 2, profile: sunspec_inverter_103, manufacturer: Sim}
      - {id: dtsu, unit_id: 3, profile: chint_dtsu666}
`)
	devicetest.CompareGolden(t, filepath.Join("testdata", "golden", "profiles.yaml"), devicetest.FirstEmissions(t, startReceiver(t, cfg).metrics, 3))
}

func TestGoldenFields(t *testing.T) {
	bank := modbussim.NewBank(7)
	bank.SetRegisters(7, modbussim.Holding, 0, modbussim.Float32Regs(230.5)...)
	bank.SetRegisters(7, modbussim.Holding, 2, 0xFFFE, 0x1DC0) // int32 -123456
	bank.SetRegisters(7, modbussim.Holding, 4, 2345)           // 234.5 after scale 0.1
	bank.SetRegisters(7, modbussim.Holding, 5, 0b0100)         // bit 2 set, bit 3 clear
	bank.SetRegisters(7, modbussim.Holding, 6, modbussim.Uint32Regs(1000)...)
	bank.SetRegisters(7, modbussim.Holding, 8, 0xFFFF) // uint16 "not available" is reported as is
	bank.SetRegisters(7, modbussim.Input, 0, modbussim.Float32Regs(-12.25)[1], modbussim.Float32Regs(-12.25)[0])
	bank.SetBits(7, modbussim.Coils, 0, true, false)
	bank.SetBits(7, modbussim.Discrete, 3, true)
	// Register 20 raises exception 2: its field is stale and the exception is counted.
	bank.Fail(7, modbussim.Holding, 20, 20, modbus.ErrIllegalDataAddress)
	addr := startTCPServer(t, bank)

	cfg := loadConfig(t, `
poll: {interval: 2s, timeout: 1s, retries: 0}
connections:
  - endpoint: tcp://`+addr+`
    devices:
      - id: fields
        unit_id: 7
        manufacturer: Acme
        model: PM-1
        resource_attributes: {site: lab, line: "3"}
        fields:
          - {name: float_abcd, address: 0, type: float32, metric: golden.voltage, unit: V, attributes: {phase: L1}}
          - {name: int32, address: 2, type: int32, metric: golden.offset}
          - {name: scaled, address: 4, scale: 0.1, metric: golden.voltage, unit: V, attributes: {phase: L2}}
          - {name: bit2, address: 5, type: bit, bit: 2, metric: golden.flag, attributes: {bit: "2"}}
          - {name: bit3, address: 5, type: bit, bit: 3, metric: golden.flag, attributes: {bit: "3"}}
          - {name: counter, address: 6, type: uint32, kind: sum, metric: golden.energy, unit: kWh}
          - {name: raw, address: 8, metric: golden.raw}
          - {name: cdab, register: 30001, type: float32, byte_order: CDAB, metric: golden.current, unit: A}
          - {name: coil, register: 1, metric: golden.relay, attributes: {relay: "1"}}
          - {name: coil2, register: 2, metric: golden.relay, attributes: {relay: "2"}}
          - {name: door, register: 10004, metric: golden.door}
          - {name: missing, address: 20, metric: golden.missing}
`)
	devicetest.CompareGolden(t, filepath.Join("testdata", "golden", "fields.yaml"), devicetest.FirstEmissions(t, startReceiver(t, cfg).metrics, 1))
}
