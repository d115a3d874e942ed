package modbusreceiver

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func fs(table Table, addr, count int) fieldSpec {
	return fieldSpec{table: table, address: addr, count: count, typ: TypeUint16}
}

type rng struct {
	table        Table
	start, count int
	fields       []int
}

func TestPlan(t *testing.T) {
	def := planLimits{maxRegisters: 125, maxBits: 2000, maxGap: 4}
	h := TableHolding
	tests := []struct {
		name   string
		fields []fieldSpec
		lim    planLimits
		hints  func(n int) planHints
		want   []rng
	}{
		{name: "contiguous", fields: []fieldSpec{fs(h, 0, 2), fs(h, 2, 2), fs(h, 4, 2)}, want: []rng{{h, 0, 6, []int{0, 1, 2}}}},
		{name: "unsorted input", fields: []fieldSpec{fs(h, 4, 2), fs(h, 0, 2), fs(h, 2, 2)}, want: []rng{{h, 0, 6, []int{1, 2, 0}}}},
		{name: "gap equal to max_gap is bridged", fields: []fieldSpec{fs(h, 0, 2), fs(h, 6, 2)}, want: []rng{{h, 0, 8, []int{0, 1}}}},
		{name: "gap above max_gap splits", fields: []fieldSpec{fs(h, 0, 2), fs(h, 7, 2)}, want: []rng{{h, 0, 2, []int{0}}, {h, 7, 2, []int{1}}}},
		{name: "zero gap allowed only", fields: []fieldSpec{fs(h, 0, 1), fs(h, 1, 1), fs(h, 3, 1)}, lim: planLimits{125, 2000, 0}, want: []rng{{h, 0, 2, []int{0, 1}}, {h, 3, 1, []int{2}}}},
		{name: "125 register limit", fields: []fieldSpec{fs(h, 0, 4), fs(h, 120, 4), fs(h, 124, 2)}, lim: planLimits{125, 2000, 200},
			want: []rng{{h, 0, 124, []int{0, 1}}, {h, 124, 2, []int{2}}}},
		{name: "exactly 125", fields: []fieldSpec{fs(h, 0, 1), fs(h, 124, 1)}, lim: planLimits{125, 2000, 200}, want: []rng{{h, 0, 125, []int{0, 1}}}},
		{name: "device maximum", fields: []fieldSpec{fs(h, 0, 2), fs(h, 2, 2), fs(h, 4, 2), fs(h, 6, 2)}, lim: planLimits{4, 2000, 4},
			want: []rng{{h, 0, 4, []int{0, 1}}, {h, 4, 4, []int{2, 3}}}},
		{name: "tables are read apart, holding input coil discrete", fields: []fieldSpec{fs(TableDiscrete, 0, 1), fs(TableInput, 0, 2), fs(TableCoil, 0, 1), fs(h, 0, 2)},
			want: []rng{{h, 0, 2, []int{3}}, {TableInput, 0, 2, []int{1}}, {TableCoil, 0, 1, []int{2}}, {TableDiscrete, 0, 1, []int{0}}}},
		{name: "bits merge up to 2000", fields: []fieldSpec{fs(TableCoil, 0, 1), fs(TableCoil, 1500, 1), fs(TableCoil, 1999, 1), fs(TableCoil, 2000, 1)}, lim: planLimits{125, 2000, 1500},
			want: []rng{{TableCoil, 0, 2000, []int{0, 1, 2}}, {TableCoil, 2000, 1, []int{3}}}},
		{name: "bit fields share a register", fields: []fieldSpec{fs(h, 10, 1), fs(h, 10, 1), fs(h, 11, 2)}, want: []rng{{h, 10, 3, []int{0, 1, 2}}}},
		{name: "overlapping long field", fields: []fieldSpec{fs(h, 0, 10), fs(h, 2, 1), fs(h, 12, 1)}, lim: planLimits{125, 2000, 2}, want: []rng{{h, 0, 13, []int{0, 1, 2}}}},
		{name: "isolated field read alone, never bridged", fields: []fieldSpec{fs(h, 0, 2), fs(h, 2, 2), fs(h, 4, 2)},
			hints: func(n int) planHints { iso := make([]bool, n); iso[1] = true; return planHints{isolated: iso} },
			want:  []rng{{h, 0, 2, []int{0}}, {h, 2, 2, []int{1}}, {h, 4, 2, []int{2}}}},
		{name: "break before", fields: []fieldSpec{fs(h, 0, 2), fs(h, 2, 2), fs(h, 4, 2)},
			hints: func(n int) planHints { b := make([]bool, n); b[2] = true; return planHints{breakBefore: b} },
			want:  []rng{{h, 0, 4, []int{0, 1}}, {h, 4, 2, []int{2}}}},
		{name: "empty", fields: nil, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lim := tt.lim
			if lim == (planLimits{}) {
				lim = def
			}
			var hints planHints
			if tt.hints != nil {
				hints = tt.hints(len(tt.fields))
			}
			var got []rng
			for _, b := range plan(tt.fields, lim, hints) {
				got = append(got, rng{b.table, b.start, b.count, b.fields})
			}
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestSpanAndSplit(t *testing.T) {
	fields := []fieldSpec{fs(TableHolding, 0, 2), fs(TableHolding, 4, 2), fs(TableHolding, 10, 4)}
	l, r := splitFields([]int{0, 1, 2})
	assert.Equal(t, []int{0}, l)
	assert.Equal(t, []int{1, 2}, r)
	b := span(fields, r)
	assert.Equal(t, 4, b.start)
	assert.Equal(t, 10, b.count)
}

// Requests per poll from the planner, against one request per field, for the shipped profiles.
func TestPlanShippedProfiles(t *testing.T) {
	want := map[string]int{"eastron_sdm630": 4, "chint_dtsu666": 3, "sunspec_inverter_103": 1}
	matches, err := filepath.Glob(profilesDir + "*.yaml")
	require.NoError(t, err)
	seen := 0
	for _, m := range matches {
		profiles, err := loadProfileFile(m)
		require.NoError(t, err)
		for name, p := range profiles {
			specs, errs := buildFields(p.Fields, p.ByteOrder, 0, newDefaultRequestSpec(), "")
			require.Empty(t, errs)
			blocks := plan(specs, planLimits{maxRegisters: 125, maxBits: 2000, maxGap: newDefaultRequestSpec().MaxGap}, planHints{})
			regs := 0
			for _, b := range blocks {
				regs += b.count
			}
			t.Logf("%-22s fields %3d  requests/poll: planner %d, one per field %d  (registers read %d)", name, len(specs), len(blocks), len(specs), regs)
			if w, ok := want[name]; ok {
				assert.Equal(t, w, len(blocks), name)
				seen++
			}
		}
	}
	assert.Equal(t, len(want), seen)
	_ = fmt.Sprint()
}

// Explicit blocks are read as given, in the configured order, each serving the fields inside it
// (by address); a block left without fields is not read.
func TestPlanBlocks(t *testing.T) {
	h, in, c := TableHolding, TableInput, TableCoil
	fields := []fieldSpec{fs(in, 3, 2), fs(h, 8, 2), fs(h, 0, 1), fs(c, 5, 1), fs(h, 30, 1)}
	blocks := []blockSpec{{h, 0, 10}, {h, 10, 10}, {in, 0, 5}, {c, 0, 16}, {h, 30, 2}}
	got := planBlocks(fields, blocks)
	assert.Equal(t, []block{
		{table: h, start: 0, count: 10, fields: []int{2, 1}, explicit: true},
		{table: in, start: 0, count: 5, fields: []int{0}, explicit: true},
		{table: c, start: 0, count: 16, fields: []int{3}, explicit: true},
		{table: h, start: 30, count: 2, fields: []int{4}, explicit: true},
	}, got)
	assert.Equal(t, -1, blockOf(blocks, &fieldSpec{table: h, address: 19, count: 2}), "a field across two blocks is in neither")
}
