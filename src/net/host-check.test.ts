import { describe, expect, it } from 'vitest';
import { HostAllowlist, hostCheckApplies, hostOf } from './host-check.js';

describe('the Host-header check (DNS rebinding)', () => {
  const allowlist = new HostAllowlist({ hosts: ['chat.home.arpa'], machineHostname: 'gpu1.home.arpa' });

  it('accepts the listener’s names, localhost, this machine and IP literals, with or without a port', () => {
    for (const host of [
      'chat.home.arpa',
      'CHAT.home.arpa.:8080',
      'localhost:11434',
      'app.localhost',
      'gpu1.home.arpa',
      'gpu1:11434',
      'printer.local',
      'host.docker.internal',
      '10.0.20.5:11434',
      '127.0.0.1',
      '[::1]:11434',
      '[fd00:20::5]',
    ]) {
      expect(allowlist.allows(host), host).toBe(true);
    }
    expect(allowlist.allows(undefined)).toBe(true); // HTTP/1.0: browsers always send Host
  });

  it('refuses names it does not know, and malformed headers', () => {
    for (const host of [
      'evil.example',
      'evil.example:11434',
      'chat.home.arpa.evil.example',
      'localhost.evil.example',
      '',
      'a b',
      'x:y',
      '[::1',
      'user@localhost',
    ]) {
      expect(allowlist.allows(host), host).toBe(false);
    }
  });

  it('applies to UI listeners, loopback listeners and listeners with hosts, not to bare API listeners on the LAN', () => {
    expect(hostCheckApplies({ serves: ['inference'], hosts: [], address: '127.0.0.1:11434' })).toBe(true);
    expect(hostCheckApplies({ serves: ['inference'], hosts: [], address: '[::1]:11434' })).toBe(true);
    expect(hostCheckApplies({ serves: ['inference', 'ui'], hosts: [], address: '10.0.20.5:11434' })).toBe(true);
    expect(hostCheckApplies({ serves: ['admin'], hosts: ['gpu1-mgmt.lan'], address: '10.0.99.5:11434' })).toBe(true);
    expect(hostCheckApplies({ serves: ['inference'], hosts: [], address: '10.0.20.5:11434' })).toBe(false);
  });

  it('reads the host out of a header', () => {
    expect(hostOf('a.lan:80')).toBe('a.lan');
    expect(hostOf('[fd00::1]:80')).toBe('fd00::1');
    expect(hostOf('[fd00::1]x')).toBeUndefined();
    expect(hostOf('a.lan:http')).toBeUndefined();
  });
});
