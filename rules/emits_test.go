package rules

import (
	"reflect"
	"sort"
	"testing"
)

// TestEmitsShowTheMatch pins the wrong-emit families of issue 12: a rule emits only the
// techniques the matched branch shows.
func TestEmitsShowTheMatch(t *testing.T) {
	set := loadShipped(t)
	tests := []struct {
		cmd, rule string
		want      []string // techniques (sub-technique when there is one) the rule emits
	}{
		{"ifconfig", "R0004", []string{"T1016"}},
		{"ip addr show", "R0004", []string{"T1016"}},
		{"netstat -tulpn", "R0004", []string{"T1049"}},
		{"ifconfig; netstat -an", "R0004", []string{"T1016", "T1049"}},
		{"whoami", "R0003", []string{"T1033"}},
		{"id", "R0003", []string{"T1033"}},
		{"cat /etc/passwd", "R0003", []string{"T1087.001"}},
		{"echo '/tmp/x &' >> /etc/rc.local", "R0029", []string{"T1037.004"}},
		{"echo '/tmp/x &' >> ~/.bashrc", "R0029", []string{"T1546.004"}},
		{"cat /etc/shadow", "R0024", []string{"T1003.008"}},
		{"cat ~/.aws/credentials", "R0024", []string{"T1552.001"}},
		{"cat ~/.ssh/id_rsa", "R0024", []string{"T1552.004"}},
		{"/bin/busybox ECCHI", "R0023", []string{"T1082"}},
		{"enable; system; shell", "R0023", []string{"T1059.004", "T1082"}},
		{"history -c", "R0016", []string{"T1070.003"}},
		{"unset HISTFILE", "R0016", []string{"T1562.003"}},
		{"insmod /tmp/x.ko", "R0030", []string{"T1014", "T1547.006"}},
		{"echo /tmp/l.so > /etc/ld.so.preload", "R0030", []string{"T1574.006"}},
		{"systemd-detect-virt", "R0007", []string{"T1497.001"}},
		{"ps aux | grep -i aliyun", "R0007", []string{"T1518.001"}},
	}
	for _, tt := range tests {
		var got []string
		for _, d := range set.Eval(commandEvent(tt.cmd), nil) {
			if d.RuleID != tt.rule {
				continue
			}
			tech := d.TechniqueID
			if d.SubTechniqueID != "" {
				tech = d.SubTechniqueID
			}
			got = append(got, tech)
		}
		sort.Strings(got)
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%q: %s emits %v, want %v", tt.cmd, tt.rule, got, tt.want)
		}
	}
}
