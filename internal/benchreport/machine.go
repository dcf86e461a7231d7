package benchreport

import (
	"bufio"
	"os"
	"runtime"
	"strconv"
	"strings"
)

// Machine describes where the benchmarks ran.
type Machine struct {
	CPU         string // model name, such as "Intel(R) Xeon(R) Processor"
	Cores       int    // logical CPUs
	MemoryBytes int64  // total memory
	OS          string // PRETTY_NAME of /etc/os-release
	Kernel      string // kernel release
	GoVersion   string // such as go1.26.8
	PostgreSQL  string // server version and fsync setting, as the benchmarks read them
	NATSServer  string // embedded nats-server module version
}

// ReadMachine describes this machine from /proc and /etc/os-release, and
// takes the versions that only the benchmarks saw from their configuration
// lines. A fact it cannot read is left empty.
func ReadMachine(results Results) Machine {
	m := Machine{
		CPU:        cpuModel(),
		Cores:      runtime.NumCPU(),
		OS:         osName(),
		Kernel:     strings.TrimSpace(readFile("/proc/sys/kernel/osrelease")),
		GoVersion:  runtime.Version(),
		PostgreSQL: results.Config["postgres"],
		NATSServer: results.Config["nats-server"],
	}
	if m.CPU == "" {
		m.CPU = results.Config["cpu"]
	}
	m.MemoryBytes = memoryTotal()
	return m
}

func readFile(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return string(data)
}

// cpuModel returns the first "model name" of /proc/cpuinfo.
func cpuModel() string {
	for line := range strings.Lines(readFile("/proc/cpuinfo")) {
		key, value, ok := strings.Cut(line, ":")
		if ok && strings.TrimSpace(key) == "model name" {
			return strings.TrimSpace(value)
		}
	}
	return ""
}

// memoryTotal returns MemTotal of /proc/meminfo in bytes, or 0.
func memoryTotal() int64 {
	for line := range strings.Lines(readFile("/proc/meminfo")) {
		fields := strings.Fields(line)
		if len(fields) == 3 && fields[0] == "MemTotal:" && fields[2] == "kB" {
			kilobytes, err := strconv.ParseInt(fields[1], 10, 64)
			if err == nil {
				return kilobytes * 1024
			}
		}
	}
	return 0
}

// osName returns PRETTY_NAME of /etc/os-release.
func osName() string {
	scanner := bufio.NewScanner(strings.NewReader(readFile("/etc/os-release")))
	for scanner.Scan() {
		if value, ok := strings.CutPrefix(scanner.Text(), "PRETTY_NAME="); ok {
			return strings.Trim(value, `"`)
		}
	}
	return ""
}
