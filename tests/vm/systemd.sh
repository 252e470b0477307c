# shellcheck shell=bash
# tests/vm/systemd.sh: sourced by tests/vm/init in the systemd guest
# (run.sh --mode systemd), after it has made /tmp, /run and overlays on
# /etc, /var and /usr (tmpfs upper layers) and a fresh /etc/machine-id. It
# boots the host's systemd as PID 1 into kpa-test.target, whose oneshot
# kpa-test.service runs tests/vm/tests.sh and then powers the guest off.
#
# /etc/systemd/system becomes a tmpfs that holds only the test units and the
# masks: the host's own enabled units do not start in the guest.
: "${kpa_vm_dir:?}" # (from tests/vm/init)
units=/etc/systemd/system
mount -t tmpfs -o mode=755 tmpfs "$units" || fail "cannot mount a tmpfs on $units"
# what a machine without terminals, network or firmware would wait for or
# fail on (and the timers that would start apt)
for u in getty@.service serial-getty@.service console-getty.service getty.target \
    systemd-timesyncd.service systemd-networkd.service systemd-networkd.socket \
    systemd-networkd-wait-online.service systemd-firstboot.service \
    systemd-pcrphase.service systemd-pcrphase-sysinit.service systemd-pcrphase-initrd.service \
    systemd-repart.service systemd-binfmt.service proc-sys-fs-binfmt_misc.automount \
    kmod-static-nodes.service systemd-modules-load.service systemd-remount-fs.service \
    apt-daily.timer apt-daily-upgrade.timer; do
    ln -s /dev/null "$units/$u"
done
vm_here=$(cd "$(dirname "$0")" && pwd)
cat >"$units/kpa-test.target" <<UNIT
[Unit]
Description=kpa's tests in the VM (tests/vm)
Requires=basic.target
Wants=kpa-test.service
After=basic.target
AllowIsolate=yes
UNIT
cat >"$units/kpa-test.service" <<UNIT
[Unit]
Description=kpa's tests (tests/vm/tests.sh)
After=basic.target

[Service]
Type=oneshot
Environment=kpa_vm_dir=$kpa_vm_dir
ExecStart=/bin/bash $vm_here/tests.sh
ExecStopPost=/bin/systemctl --no-block poweroff
StandardOutput=journal+console
StandardError=journal+console
TimeoutStartSec=infinity
UNIT
# the host root has /.dockerenv: without this, systemd takes itself for a
# container, ignores the kernel command line and heads for graphical.target
export container=
exec /lib/systemd/systemd --unit=kpa-test.target
