// Package serialport keeps one configured serial device (a barcode scanner, a UHF
// RFID reader) open through github.com/tarm/serial and hands its bytes to the agent.
// It is the only code in the agent that touches a serial port, and its one promise is
// that a broken, unplugged, garbled or silent device never hurts the agent.
//
// A Port owns one device. Port.Run opens it, delivers every chunk the kernel returns,
// in order, to an onData callback, and when the device goes away closes it, reports
// StateReopening and reopens it with exponential backoff and jitter until it is back.
// Run returns only when its context ends or Close is called; a misbehaving device
// never makes it return. Bytes are delivered raw: framing, resync after garbage and
// decoding belong to the framing and profile packages.
//
// # How a lost device is noticed
//
//   - a read fails (EIO, ENXIO, ENODEV, a closed handle): reopen;
//   - reads return nothing immediately, over and over: the kernel hung up the tty
//     (a USB adapter was pulled, a pty's master was closed). An idle read sleeps a
//     whole ReadTimeout (VMIN=0, VTIME>0), so an empty read that returns early can
//     only come from a hang-up: reopen;
//   - the device is silent: silence alone is normal (a scanner nobody uses), so it
//     is never a reason to reopen. But every StallAfter of silence the configured
//     path is stat'ed (following symlinks) and compared with the node that was
//     opened (device, inode, rdev). If it vanished, or the /dev/serial/by-id link
//     now points at another ttyACMn, the old handle is a dead device that will
//     never deliver again: reopen onto the new node. Linux and other unix only;
//   - opening fails with ENOENT and the like: keep retrying with backoff.
//
// Symlinks in Config.Path are resolved again at every open, so a by-id path follows
// the device to whatever ttyACMn/ttyUSBn it gets after a re-plug. The old handle is
// closed before waiting to reopen: holding it would keep the kernel from reusing the
// old node name.
//
// # Stream boundaries: reset the framer on every StateOpen
//
// Each successful open starts a new byte stream. onState is called with StateOpen
// before the first byte of that stream is passed to onData, and with StateReopening
// after the last byte of the previous one, all on Run's goroutine. A partial frame
// left over from before a reopen will never be completed, so a framer must drop its
// buffered bytes whenever onState reports StateOpen. Status.Reopens > 0 tells a reopen
// from the first open when the caller wants to count or log it; resetting on the
// first open too is harmless.
//
// # Sharp edges
//
//   - onData's chunk is only valid during the call; the buffer is reused. Copy what
//     you keep.
//   - onData and onState run on Run's goroutine. While they run nothing reads the
//     port; a real UART without flow control overruns its few kilobytes of kernel
//     buffer and loses bytes. Keep them short (hand off to a channel).
//   - Close is bounded by ReadTimeout (at most 1s), not instant. tarm/serial opens the
//     tty and then puts the descriptor in blocking mode, so a read already in the
//     kernel can be interrupted neither by closing the file (os.File.Close waits for
//     it) nor by the runtime poller; it ends when VTIME expires. That is why
//     ReadTimeout is capped at 1s and Close waits ReadTimeout plus a grace period.
//   - Bytes in flight when a device is lost are lost; the device is the source of truth
//     and a scanner's user simply scans again.
//   - Node identity checks exist only on unix. On Windows (COM ports) a lost device is
//     noticed by failing reads and opens alone.
//   - A config-level failure that retrying cannot fix (the path is not a tty, the
//     driver rejects the settings) parks the Port in StateFailed until Run's context
//     ends; New catches most such mistakes up front.
package serialport
