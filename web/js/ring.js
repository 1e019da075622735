// A fixed-size ring buffer of timestamped samples (the console's last minutes of metrics).

export class Ring {
  constructor(capacity) {
    this.capacity = capacity;
    this.buf = [];
    this.start = 0;
  }

  push(sample) {
    if (this.buf.length < this.capacity) this.buf.push(sample);
    else {
      this.buf[this.start] = sample;
      this.start = (this.start + 1) % this.capacity;
    }
  }

  /** Samples oldest first. */
  values() {
    return [...this.buf.slice(this.start), ...this.buf.slice(0, this.start)];
  }

  get length() {
    return this.buf.length;
  }

  last() {
    if (!this.buf.length) return undefined;
    return this.buf[(this.start + this.buf.length - 1) % this.buf.length];
  }
}
