import { logSink } from './helpers/log-sink';

describe('logger redaction', () => {
  it('censors credentials wherever they sit in a logged object', () => {
    const sink = logSink('debug');
    sink.log.info(
      {
        auth: { password: 'pw-1', applicationCredentialSecret: 'acs-2', token: 'tok-3' },
        request: { secrets: { accessKeyID: 'AK-4', secretAccessKey: 'SK-5' }, name: 'pvc-1' },
        headers: { 'X-Auth-Token': 'tok-6', authorization: 'AWS4 sig-7' },
        deep: { a: { b: { trusteePassword: 'tp-8' } } },
      },
      'a call',
    );
    const text = sink.text();
    for (const secret of ['pw-1', 'acs-2', 'tok-3', 'AK-4', 'SK-5', 'tok-6', 'sig-7', 'tp-8']) {
      expect(text).not.toContain(secret);
    }
    expect(text).toContain('pvc-1');
    expect(sink.lines[0]).toMatchObject({ auth: { password: '[REDACTED]' }, request: { secrets: '[REDACTED]' } });
  });
});
