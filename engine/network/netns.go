package network

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"
	"strconv"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// createNetns makes a new network namespace and bind-mounts it at path
// (which must not exist), with its loopback up.
func createNetns(path string) error {
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		return fmt.Errorf("create network namespace: %w", err)
	}
	f.Close()
	errc := make(chan error, 1)
	go func() {
		// The thread is never unlocked: it ends with this goroutine, so no
		// other goroutine ever runs in the new namespace.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("unshare: %w", err)
			return
		}
		src := "/proc/self/task/" + strconv.Itoa(unix.Gettid()) + "/ns/net"
		if err := unix.Mount(src, path, "none", unix.MS_BIND, ""); err != nil {
			errc <- fmt.Errorf("bind mount: %w", err)
			return
		}
		if err := linkUp("lo"); err != nil {
			errc <- fmt.Errorf("loopback: %w", err)
			return
		}
		errc <- nil
	}()
	if err := <-errc; err != nil {
		_ = removeNetns(path)
		return fmt.Errorf("create network namespace %s: %w", path, err)
	}
	return nil
}

// removeNetns unmounts and removes a namespace's mount point; what is
// already gone is fine.
func removeNetns(path string) error {
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil &&
		!errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount network namespace %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove network namespace %s: %w", path, err)
	}
	return nil
}

// isNetns tells whether path is a (mounted) network namespace.
func isNetns(path string) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return false
	}
	return st.Type == unix.NSFS_MAGIC
}

// linkUp sets IFF_UP on an interface of the calling thread's namespace.
func linkUp(name string) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return err
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	return unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
}

// deleteLink deletes a host interface by RTM_DELLINK; a missing one is fine.
func deleteLink(name string) error {
	idx, err := linkIndex(name)
	if err != nil || idx == 0 {
		return nil
	}
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("delete interface %s: %w", name, err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("delete interface %s: %w", name, err)
	}
	const hdr, ifi = unix.SizeofNlMsghdr, unix.SizeofIfInfomsg
	buf := make([]byte, hdr+ifi)
	nh := (*unix.NlMsghdr)(unsafe.Pointer(&buf[0]))
	nh.Len = uint32(len(buf))
	nh.Type = unix.RTM_DELLINK
	nh.Flags = unix.NLM_F_REQUEST | unix.NLM_F_ACK
	nh.Seq = 1
	im := (*unix.IfInfomsg)(unsafe.Pointer(&buf[hdr]))
	im.Family = unix.AF_UNSPEC
	im.Index = int32(idx)
	if err := unix.Sendto(fd, buf, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("delete interface %s: %w", name, err)
	}
	rb := make([]byte, 4096)
	for {
		n, _, err := unix.Recvfrom(fd, rb, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("delete interface %s: %w", name, err)
		}
		msgs, err := syscall.ParseNetlinkMessage(rb[:n])
		if err != nil {
			return fmt.Errorf("delete interface %s: %w", name, err)
		}
		for _, msg := range msgs {
			if msg.Header.Seq != 1 || msg.Header.Type != syscall.NLMSG_ERROR || len(msg.Data) < 4 {
				continue
			}
			code := int32(binary.NativeEndian.Uint32(msg.Data[:4]))
			if code == 0 || unix.Errno(-code) == unix.ENODEV {
				return nil
			}
			return fmt.Errorf("delete interface %s: %w", name, unix.Errno(-code))
		}
	}
}

func linkIndex(name string) (int, error) {
	data, err := os.ReadFile("/sys/class/net/" + name + "/ifindex")
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return 0, nil
		}
		return 0, err
	}
	for len(data) > 0 && (data[len(data)-1] == '\n' || data[len(data)-1] == ' ') {
		data = data[:len(data)-1]
	}
	return strconv.Atoi(string(data))
}
