package cgroups

import (
	"reflect"
	"testing"

	devconfig "github.com/opencontainers/cgroups/devices/config"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestConvertCPUSharesPerVersion(t *testing.T) {
	r := &specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: ptr[uint64](1024)}}
	v1, err := convert(r, false)
	if err != nil {
		t.Fatal(err)
	}
	if v1.CpuShares != 1024 || v1.CpuWeight != 0 {
		t.Errorf("v1: shares %d weight %d, want 1024 and 0", v1.CpuShares, v1.CpuWeight)
	}
	v2, err := convert(r, true)
	if err != nil {
		t.Fatal(err)
	}
	// 1024 shares, the v1 default, is the v2 default weight 100.
	if v2.CpuWeight != 100 {
		t.Errorf("v2: weight %d, want 100", v2.CpuWeight)
	}
}

func TestConvertFields(t *testing.T) {
	r := &specs.LinuxResources{
		Memory: &specs.LinuxMemory{
			Limit: ptr[int64](100), Reservation: ptr[int64](50), Swap: ptr[int64](200),
			Kernel: ptr[int64](1), DisableOOMKiller: ptr(true),
		},
		BlockIO: &specs.LinuxBlockIO{
			Weight:                ptr[uint16](500),
			WeightDevice:          []specs.LinuxWeightDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8, Minor: 0}, LeafWeight: ptr[uint16](20)}},
			ThrottleReadBpsDevice: []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8, Minor: 16}, Rate: 1000}},
		},
		Network: &specs.LinuxNetwork{ClassID: ptr[uint32](7), Priorities: []specs.LinuxInterfacePriority{{Name: "eth0", Priority: 3}}},
	}
	res, err := convert(r, false)
	if err != nil {
		t.Fatal(err)
	}
	if res.Memory != 100 || res.MemoryReservation != 50 || res.MemorySwap != 200 || !res.OomKillDisable {
		t.Errorf("memory converted to %d/%d/%d/%v", res.Memory, res.MemoryReservation, res.MemorySwap, res.OomKillDisable)
	}
	if res.BlkioWeight != 500 || len(res.BlkioWeightDevice) != 1 || res.BlkioWeightDevice[0].LeafWeightString() != "8:0 20" || res.BlkioWeightDevice[0].Weight != 0 {
		t.Errorf("blkio weights converted to %d %+v", res.BlkioWeight, res.BlkioWeightDevice)
	}
	if len(res.BlkioThrottleReadBpsDevice) != 1 || res.BlkioThrottleReadBpsDevice[0].String() != "8:16 1000" {
		t.Errorf("throttle converted to %+v", res.BlkioThrottleReadBpsDevice)
	}
	if res.NetClsClassid != 7 || len(res.NetPrioIfpriomap) != 1 || res.NetPrioIfpriomap[0].CgroupString() != "eth0 3" {
		t.Errorf("network converted to %d %+v", res.NetClsClassid, res.NetPrioIfpriomap)
	}

	if _, err := convert(&specs.LinuxResources{Unified: map[string]string{"pids.max": "3"}}, false); err == nil {
		t.Error("unified accepted on v1")
	}
}

func TestDeviceRules(t *testing.T) {
	r := &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{
		{Allow: false},
		{Allow: true, Type: "b", Major: ptr[int64](8), Access: "mw"},
	}}
	extra := []specs.LinuxDeviceCgroup{{Allow: true, Type: "c", Major: ptr[int64](1), Minor: ptr[int64](3), Access: "rwm"}}
	got, err := deviceRules(r, extra)
	if err != nil {
		t.Fatal(err)
	}
	want := []*devconfig.Rule{
		{Type: devconfig.WildcardDevice, Major: -1, Minor: -1, Permissions: "rwm", Allow: false},
		{Type: devconfig.BlockDevice, Major: 8, Minor: -1, Permissions: "wm", Allow: true},
		{Type: devconfig.CharDevice, Major: 1, Minor: 3, Permissions: "rwm", Allow: true},
	}
	if !reflect.DeepEqual(got, want) {
		for i := range got {
			t.Logf("rule %d: %+v", i, *got[i])
		}
		t.Errorf("rules differ from %v", want)
	}

	for _, bad := range []specs.LinuxDeviceCgroup{{Type: "p"}, {Access: "rx"}} {
		if _, err := deviceRules(&specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{bad}}, nil); err == nil {
			t.Errorf("rule %+v accepted", bad)
		}
	}
}
