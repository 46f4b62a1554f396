package convoy

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Fixtures shared by the signer and verifier tests.
const (
	// specSecret, specMsgID, specTimestamp, specBody and specSignature are
	// the example of the Standard Webhooks specification.
	specSecret    = SecretValue("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	specMsgID     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	specTimestamp = 1614265330
	specBody      = `{"test": 2432232314}`
	specSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

	// testSecretOld and testSecretNew are whsec_ secrets of 32 bytes
	// (0x00..0x1f and 0x64..0x83), usable by every scheme.
	testSecretOld = SecretValue("whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
	testSecretNew = SecretValue("whsec_ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1+f4CBgoM=")
	// testSecretOther is a secret nobody signs with.
	testSecretOther SecretValue = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
)

// testTime is the time test requests are signed at.
var testTime = time.Unix(1700000000, 0)

var allHashes = []Hash{
	MD5, SHA1, SHA224, SHA256, SHA384, SHA512,
	SHA3_224, SHA3_256, SHA3_384, SHA3_512, SHA512_224, SHA512_256,
}

func mustSign(t *testing.T, in SignInput) http.Header {
	t.Helper()
	h, err := DefaultSigner().Sign(in)
	require.NoError(t, err)
	return h
}

func repeat(b byte, n int) string { return strings.Repeat(string([]byte{b}), n) }

// rfcKey4 is the key of test case 4 of RFC 2202 and RFC 4231: 0x01..0x19.
func rfcKey4() string {
	b := make([]byte, 25)
	for i := range b {
		b[i] = byte(i + 1)
	}
	return string(b)
}

// TestSignKnownAnswers runs published HMAC test vectors through the
// Convoy simple scheme with hex encoding: the header is the vector's HMAC.
func TestSignKnownAnswers(t *testing.T) {
	t.Parallel()
	const (
		rfc6 = "Test Using Larger Than Block-Size Key - Hash Key First"
		// RFC 2202 test case 7.
		rfc2202Data7 = "Test Using Larger Than Block-Size Key and Larger Than One Block-Size Data"
		// RFC 4231 test case 7.
		rfc4231Data7 = "This is a test using a larger than block-size key and a larger than " +
			"block-size data. The key needs to be hashed before being used by the HMAC algorithm."
	)
	tests := []struct {
		name string
		hash Hash
		key  string
		data string
		want string
	}{
		// RFC 2202, section 2 (HMAC-MD5), test cases 1-4, 6, 7.
		{"RFC2202/MD5/1", MD5, repeat(0x0b, 16), "Hi There", "9294727a3638bb1c13f48ef8158bfc9d"},
		{"RFC2202/MD5/2", MD5, "Jefe", "what do ya want for nothing?", "750c783e6ab0b503eaa86e310a5db738"},
		{"RFC2202/MD5/3", MD5, repeat(0xaa, 16), repeat(0xdd, 50), "56be34521d144c88dbb8c733f0e8b3f6"},
		{"RFC2202/MD5/4", MD5, rfcKey4(), repeat(0xcd, 50), "697eaf0aca3a3aea3a75164746ffaa79"},
		{"RFC2202/MD5/6", MD5, repeat(0xaa, 80), rfc6, "6b1ab7fe4bd7bf8f0b62e6ce61b9d0cd"},
		{"RFC2202/MD5/7", MD5, repeat(0xaa, 80), rfc2202Data7, "6f630fad67cda0ee1fb1f562db3aa53e"},
		// RFC 2202, section 3 (HMAC-SHA-1), test cases 1-4, 6, 7.
		{"RFC2202/SHA1/1", SHA1, repeat(0x0b, 20), "Hi There", "b617318655057264e28bc0b6fb378c8ef146be00"},
		{"RFC2202/SHA1/2", SHA1, "Jefe", "what do ya want for nothing?", "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"},
		{"RFC2202/SHA1/3", SHA1, repeat(0xaa, 20), repeat(0xdd, 50), "125d7342b9ac11cd91a39af48aa17b4f63f175d3"},
		{"RFC2202/SHA1/4", SHA1, rfcKey4(), repeat(0xcd, 50), "4c9007f4026250c6bc8414f9bf50c86c2d7235da"},
		{"RFC2202/SHA1/6", SHA1, repeat(0xaa, 80), rfc6, "aa4ae5e15272d00e95705637ce8a3b55ed402112"},
		{"RFC2202/SHA1/7", SHA1, repeat(0xaa, 80), rfc2202Data7, "e8e99d0f45237d786d6bbaa7965c7808bbff1a91"},
		// RFC 4231, section 4, test cases 1-4, 6, 7.
		{"RFC4231/SHA224/1", SHA224, repeat(0x0b, 20), "Hi There", "896fb1128abbdf196832107cd49df33f47b4b1169912ba4f53684b22"},
		{"RFC4231/SHA256/1", SHA256, repeat(0x0b, 20), "Hi There", "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
		{"RFC4231/SHA384/1", SHA384, repeat(0x0b, 20), "Hi There", "afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59cfaea9ea9076ede7f4af152e8b2fa9cb6"},
		{"RFC4231/SHA512/1", SHA512, repeat(0x0b, 20), "Hi There", "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cdedaa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854"},
		{"RFC4231/SHA224/2", SHA224, "Jefe", "what do ya want for nothing?", "a30e01098bc6dbbf45690f3a7e9e6d0f8bbea2a39e6148008fd05e44"},
		{"RFC4231/SHA256/2", SHA256, "Jefe", "what do ya want for nothing?", "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
		{"RFC4231/SHA384/2", SHA384, "Jefe", "what do ya want for nothing?", "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e8e2240ca5e69e2c78b3239ecfab21649"},
		{"RFC4231/SHA512/2", SHA512, "Jefe", "what do ya want for nothing?", "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"},
		{"RFC4231/SHA224/3", SHA224, repeat(0xaa, 20), repeat(0xdd, 50), "7fb3cb3588c6c1f6ffa9694d7d6ad2649365b0c1f65d69d1ec8333ea"},
		{"RFC4231/SHA256/3", SHA256, repeat(0xaa, 20), repeat(0xdd, 50), "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"},
		{"RFC4231/SHA384/3", SHA384, repeat(0xaa, 20), repeat(0xdd, 50), "88062608d3e6ad8a0aa2ace014c8a86f0aa635d947ac9febe83ef4e55966144b2a5ab39dc13814b94e3ab6e101a34f27"},
		{"RFC4231/SHA512/3", SHA512, repeat(0xaa, 20), repeat(0xdd, 50), "fa73b0089d56a284efb0f0756c890be9b1b5dbdd8ee81a3655f83e33b2279d39bf3e848279a722c806b485a47e67c807b946a337bee8942674278859e13292fb"},
		{"RFC4231/SHA224/4", SHA224, rfcKey4(), repeat(0xcd, 50), "6c11506874013cac6a2abc1bb382627cec6a90d86efc012de7afec5a"},
		{"RFC4231/SHA256/4", SHA256, rfcKey4(), repeat(0xcd, 50), "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"},
		{"RFC4231/SHA384/4", SHA384, rfcKey4(), repeat(0xcd, 50), "3e8a69b7783c25851933ab6290af6ca77a9981480850009cc5577c6e1f573b4e6801dd23c4a7d679ccf8a386c674cffb"},
		{"RFC4231/SHA512/4", SHA512, rfcKey4(), repeat(0xcd, 50), "b0ba465637458c6990e5a8c5f61d4af7e576d97ff94b872de76f8050361ee3dba91ca5c11aa25eb4d679275cc5788063a5f19741120c4f2de2adebeb10a298dd"},
		{"RFC4231/SHA224/6", SHA224, repeat(0xaa, 131), rfc6, "95e9a0db962095adaebe9b2d6f0dbce2d499f112f2d2b7273fa6870e"},
		{"RFC4231/SHA256/6", SHA256, repeat(0xaa, 131), rfc6, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
		{"RFC4231/SHA384/6", SHA384, repeat(0xaa, 131), rfc6, "4ece084485813e9088d2c63a041bc5b44f9ef1012a2b588f3cd11f05033ac4c60c2ef6ab4030fe8296248df163f44952"},
		{"RFC4231/SHA512/6", SHA512, repeat(0xaa, 131), rfc6, "80b24263c7c1a3ebb71493c1dd7be8b49b46d1f41b4aeec1121b013783f8f3526b56d037e05f2598bd0fd2215d6a1e5295e64f73f63f0aec8b915a985d786598"},
		{"RFC4231/SHA224/7", SHA224, repeat(0xaa, 131), rfc4231Data7, "3a854166ac5d9f023f54d517d0b39dbd946770db9c2b95c9f6f565d1"},
		{"RFC4231/SHA256/7", SHA256, repeat(0xaa, 131), rfc4231Data7, "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"},
		{"RFC4231/SHA384/7", SHA384, repeat(0xaa, 131), rfc4231Data7, "6617178e941f020d351e2f254e8fd32c602420feb0b8fb9adccebb82461e99c5a678cc31e799176d3860e6110c46523e"},
		{"RFC4231/SHA512/7", SHA512, repeat(0xaa, 131), rfc4231Data7, "e37b6a775dc87dbaa4dfa9f96e5e3ffddebd71f8867289865df5a32d20cdc944b6022cac3c4982b10d5eeb55c3e4de15134676fb6de0446065c97440fa8c6a58"},
		// No published HMAC vectors use the inputs of RFC 4231 with SHA-3 or
		// SHA-512/t. These were recorded once with Python 3.11's hmac module
		// (OpenSSL), independently of this package:
		//   python3 -c 'import hmac; print(hmac.new(KEY, DATA, "sha3_224").hexdigest())'
		// with KEY, DATA of RFC 4231 test case 1 (b"\x0b"*20, b"Hi There")
		// and test case 2 (b"Jefe", b"what do ya want for nothing?"), and
		// the names sha3_224, sha3_256, sha3_384, sha3_512, sha512_224,
		// sha512_256.
		{"recorded/SHA3_224/1", SHA3_224, repeat(0x0b, 20), "Hi There", "3b16546bbc7be2706a031dcafd56373d9884367641d8c59af3c860f7"},
		{"recorded/SHA3_224/2", SHA3_224, "Jefe", "what do ya want for nothing?", "7fdb8dd88bd2f60d1b798634ad386811c2cfc85bfaf5d52bbace5e66"},
		{"recorded/SHA3_256/1", SHA3_256, repeat(0x0b, 20), "Hi There", "ba85192310dffa96e2a3a40e69774351140bb7185e1202cdcc917589f95e16bb"},
		{"recorded/SHA3_256/2", SHA3_256, "Jefe", "what do ya want for nothing?", "c7d4072e788877ae3596bbb0da73b887c9171f93095b294ae857fbe2645e1ba5"},
		{"recorded/SHA3_384/1", SHA3_384, repeat(0x0b, 20), "Hi There", "68d2dcf7fd4ddd0a2240c8a437305f61fb7334cfb5d0226e1bc27dc10a2e723a20d370b47743130e26ac7e3d532886bd"},
		{"recorded/SHA3_384/2", SHA3_384, "Jefe", "what do ya want for nothing?", "f1101f8cbf9766fd6764d2ed61903f21ca9b18f57cf3e1a23ca13508a93243ce48c045dc007f26a21b3f5e0e9df4c20a"},
		{"recorded/SHA3_512/1", SHA3_512, repeat(0x0b, 20), "Hi There", "eb3fbd4b2eaab8f5c504bd3a41465aacec15770a7cabac531e482f860b5ec7ba47ccb2c6f2afce8f88d22b6dc61380f23a668fd3888bb80537c0a0b86407689e"},
		{"recorded/SHA3_512/2", SHA3_512, "Jefe", "what do ya want for nothing?", "5a4bfeab6166427c7a3647b747292b8384537cdb89afb3bf5665e4c5e709350b287baec921fd7ca0ee7a0c31d022a95e1fc92ba9d77df883960275beb4e62024"},
		{"recorded/SHA512_224/1", SHA512_224, repeat(0x0b, 20), "Hi There", "b244ba01307c0e7a8ccaad13b1067a4cf6b961fe0c6a20bda3d92039"},
		{"recorded/SHA512_224/2", SHA512_224, "Jefe", "what do ya want for nothing?", "4a530b31a79ebcce36916546317c45f247d83241dfb818fd37254bde"},
		{"recorded/SHA512_256/1", SHA512_256, repeat(0x0b, 20), "Hi There", "9f9126c3d9c3c330d760425ca8a217e31feae31bfe70196ff81642b868402eab"},
		{"recorded/SHA512_256/2", SHA512_256, "Jefe", "what do ya want for nothing?", "6df7b24630d5ccb2ee335407081a87188c221489768fa2020513b2d593359456"},
	}
	covered := map[Hash]bool{}
	for _, tt := range tests {
		covered[tt.hash] = true
	}
	require.Len(t, covered, len(allHashes), "every hash has a known answer")

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for _, enc := range []Encoding{Hex, Base64} {
				h := mustSign(t, SignInput{
					Signing: Signing{Scheme: SchemeConvoySimple, Hash: tt.hash, Encoding: enc},
					Secrets: []SecretValue{SecretValue(tt.key)},
					Body:    []byte(tt.data),
				})
				want := tt.want
				if enc == Base64 {
					raw, err := hex.DecodeString(tt.want)
					require.NoError(t, err)
					want = base64.StdEncoding.EncodeToString(raw)
				}
				require.Equal(t, want, h.Get(DefaultSignatureHeader), "encoding %s", enc)
				require.Len(t, h, 1)

				// The verifier accepts the published answer too.
				require.NoError(t, VerifyConvoySimple(want, []byte(tt.data), tt.hash, enc, SecretValue(tt.key)))
			}
		})
	}
}

// TestSignConvoyAdvancedKnownAnswer pins the advanced scheme's signed
// content "<unix>,<body>". Recorded with Python 3.11:
//
//	python3 -c 'import hmac; print(hmac.new(b"Jefe", b"1700000000,what do ya want for nothing?", "sha256").hexdigest())'
func TestSignConvoyAdvancedKnownAnswer(t *testing.T) {
	t.Parallel()
	h := mustSign(t, SignInput{
		Secrets: []SecretValue{"Jefe"},
		Body:    []byte("what do ya want for nothing?"),
		Time:    testTime,
	})
	require.Equal(t,
		"t=1700000000,v1=372265dd6df922653b91277ac3577f7f8f5430c2ca989addd4eecf050a5d6e0d",
		h.Get("X-Convoy-Signature"))
}

func TestSignStandardWebhooksSpecExample(t *testing.T) {
	t.Parallel()
	h := mustSign(t, SignInput{
		Signing:   Signing{Scheme: SchemeStandardWebhooks},
		Secrets:   []SecretValue{specSecret},
		MessageID: specMsgID,
		Body:      []byte(specBody),
		Time:      time.Unix(specTimestamp, 0),
	})
	require.Equal(t, http.Header{
		"Webhook-Id":        {specMsgID},
		"Webhook-Timestamp": {"1614265330"},
		"Webhook-Signature": {specSignature},
	}, h)

	// And the spec's headers verify, as a receiver gets them.
	in := http.Header{}
	in.Set("webhook-id", specMsgID)
	in.Set("webhook-timestamp", "1614265330")
	in.Set("webhook-signature", specSignature)
	require.NoError(t, VerifyStandardWebhooks(in, []byte(specBody), 0, time.Unix(specTimestamp, 0), specSecret))
	v := &Verifier{
		Signing: Signing{Scheme: SchemeStandardWebhooks},
		Secrets: []SecretValue{specSecret},
		Now:     func() time.Time { return time.Unix(specTimestamp+60, 0) },
	}
	require.NoError(t, v.Verify(in, []byte(specBody)))
}

func TestSignDefaults(t *testing.T) {
	t.Parallel()
	body := []byte(`{"a":1}`)
	zero := mustSign(t, SignInput{Secrets: []SecretValue{testSecretNew}, Body: body, Time: testTime})
	explicit := mustSign(t, SignInput{
		Signing: Signing{Scheme: SchemeConvoyAdvanced, Hash: SHA256, Encoding: Hex, Header: DefaultSignatureHeader},
		Secrets: []SecretValue{testSecretNew}, Body: body, Time: testTime,
	})
	require.Equal(t, explicit, zero)
	require.Len(t, zero, 1)
	require.True(t, strings.HasPrefix(zero.Get("X-Convoy-Signature"), "t=1700000000,v1="))
	require.Len(t, zero.Get("X-Convoy-Signature"), len("t=1700000000,v1=")+64)

	custom := mustSign(t, SignInput{
		Signing: Signing{Scheme: SchemeConvoySimple, Header: "X-Acme-Signature"},
		Secrets: []SecretValue{testSecretNew}, Body: body,
	})
	require.Len(t, custom, 1)
	require.Len(t, custom.Get("X-Acme-Signature"), 64)
}

// TestSignRoundTrip signs with every scheme, hash and encoding during a
// rotation and verifies with a Verifier configured the same way that holds
// only the old secret, which every scheme signs with.
func TestSignRoundTrip(t *testing.T) {
	t.Parallel()
	var cases []Signing
	for _, scheme := range []Scheme{SchemeConvoySimple, SchemeConvoyAdvanced} {
		for _, hash := range allHashes {
			for _, enc := range []Encoding{Hex, Base64} {
				cases = append(cases, Signing{Scheme: scheme, Hash: hash, Encoding: enc})
			}
		}
	}
	cases = append(cases, Signing{}, Signing{Scheme: SchemeStandardWebhooks},
		Signing{Scheme: SchemeConvoyAdvanced, Header: "X-Acme-Sig"})
	for _, s := range cases {
		t.Run(fmt.Sprintf("%s/%s/%s/%s", s.Scheme, s.Hash, s.Encoding, s.Header), func(t *testing.T) {
			t.Parallel()
			for _, body := range [][]byte{[]byte(`{"id":"evt_1","n":[1,2,3]}`), {}, []byte("\x00\xff,.t=v1")} {
				in := SignInput{
					Signing:   s,
					Secrets:   []SecretValue{testSecretNew, testSecretOld},
					MessageID: "msg_1",
					Body:      bytes.Clone(body),
					Time:      testTime,
				}
				h := mustSign(t, in)
				require.Equal(t, body, in.Body, "Sign must not change the body")
				v := &Verifier{Signing: s, Secrets: []SecretValue{testSecretOld}, Now: func() time.Time { return testTime }}
				require.NoError(t, v.Verify(h, body))
			}
		})
	}
}

// TestSignRotation follows an app's secrets through a rotation: while the
// old secret is live both verify; once its ExpiresAt passed, only the new
// one does.
func TestSignRotation(t *testing.T) {
	t.Parallel()
	expiry := testTime.Add(time.Hour)
	appSecrets := []Secret{ // newest last, as App.Secrets
		{Value: testSecretOld, CreatedAt: testTime.Add(-24 * time.Hour), ExpiresAt: expiry},
		{Value: testSecretNew, CreatedAt: testTime},
	}
	body := []byte(`{"rotated":true}`)

	for _, scheme := range []Scheme{SchemeConvoyAdvanced, SchemeStandardWebhooks, SchemeConvoySimple} {
		t.Run(string(scheme), func(t *testing.T) {
			t.Parallel()
			verify := func(h http.Header, now time.Time, secrets ...SecretValue) error {
				v := &Verifier{Signing: Signing{Scheme: scheme}, Secrets: secrets, Now: func() time.Time { return now }}
				return v.Verify(h, body)
			}

			// During the rotation both secrets are live.
			during := testTime.Add(30 * time.Minute)
			live := liveSecrets(appSecrets, during)
			require.Equal(t, []SecretValue{testSecretNew, testSecretOld}, live)
			h := mustSign(t, SignInput{Signing: Signing{Scheme: scheme}, Secrets: live, MessageID: "msg_rot", Body: body, Time: during})
			require.NoError(t, verify(h, during, testSecretOld), "the old secret keeps working until it expires")
			require.NoError(t, verify(h, during, testSecretOther, testSecretOld))
			if scheme == SchemeConvoySimple {
				// The simple scheme carries one signature, by the oldest
				// live secret: a receiver that already switched fails
				// until the old secret expires, unless it accepts both.
				require.ErrorIs(t, verify(h, during, testSecretNew), ErrSignatureMismatch)
				require.NoError(t, verify(h, during, testSecretNew, testSecretOld))
			} else {
				require.NoError(t, verify(h, during, testSecretNew))
			}

			// After ExpiresAt the old secret no longer signs.
			after := expiry.Add(time.Second)
			live = liveSecrets(appSecrets, after)
			require.Equal(t, []SecretValue{testSecretNew}, live)
			h = mustSign(t, SignInput{Signing: Signing{Scheme: scheme}, Secrets: live, MessageID: "msg_rot", Body: body, Time: after})
			require.ErrorIs(t, verify(h, after, testSecretOld), ErrSignatureMismatch)
			require.NoError(t, verify(h, after, testSecretNew))
			require.NoError(t, verify(h, after, testSecretOld, testSecretNew))
		})
	}
}

func TestSignRotationHeaders(t *testing.T) {
	t.Parallel()
	in := SignInput{Secrets: []SecretValue{testSecretNew, testSecretOld}, MessageID: "msg_1", Body: []byte("x"), Time: testTime}
	adv := mustSign(t, in)
	parsed, err := ParseConvoyAdvancedHeader(adv.Get(DefaultSignatureHeader), Hex)
	require.NoError(t, err)
	require.Equal(t, int64(1700000000), parsed.Timestamp)
	require.Len(t, parsed.Signatures, 2)

	in.Signing.Scheme = SchemeStandardWebhooks
	sw := mustSign(t, in)
	require.Len(t, strings.Split(sw.Get("webhook-signature"), " "), 2)
	require.Equal(t, "msg_1", sw.Get("webhook-id"))
	require.Equal(t, "1700000000", sw.Get("webhook-timestamp"))
}

func TestSignErrors(t *testing.T) {
	t.Parallel()
	short := SecretValue("whsec_" + base64.StdEncoding.EncodeToString(make([]byte, 16)))
	long := SecretValue("whsec_" + base64.StdEncoding.EncodeToString(make([]byte, 65)))
	tooMany := make([]SecretValue, maxSignatures+1)
	for i := range tooMany {
		tooMany[i] = testSecretNew
	}
	tests := []struct {
		name string
		in   SignInput
		want error
	}{
		{"no secret", SignInput{Time: testTime}, ErrInvalidSecret},
		{"empty secret", SignInput{Secrets: []SecretValue{""}, Time: testTime}, ErrInvalidSecret},
		{"empty second secret", SignInput{Secrets: []SecretValue{testSecretNew, ""}, Time: testTime}, ErrInvalidSecret},
		{"too many secrets", SignInput{Secrets: tooMany, Time: testTime}, ErrInvalidSecret},
		{"unknown hash", SignInput{Signing: Signing{Hash: "SHA999"}, Secrets: []SecretValue{testSecretNew}, Time: testTime}, ErrUnknownHash},
		{"unknown scheme", SignInput{Signing: Signing{Scheme: "hmac-bogus"}, Secrets: []SecretValue{testSecretNew}, Time: testTime}, ErrUnknownScheme},
		{"unknown encoding", SignInput{Signing: Signing{Encoding: "base32"}, Secrets: []SecretValue{testSecretNew}, Time: testTime}, ErrInvalid},
		{"bad header name", SignInput{Signing: Signing{Header: "X Sig"}, Secrets: []SecretValue{testSecretNew}, Time: testTime}, ErrInvalidHeader},
		{"advanced zero time", SignInput{Secrets: []SecretValue{testSecretNew}}, ErrInvalid},
		{"advanced time before 1970", SignInput{Secrets: []SecretValue{testSecretNew}, Time: time.Unix(-1, 0)}, ErrInvalid},
		{"sw zero time", SignInput{Signing: Signing{Scheme: SchemeStandardWebhooks}, Secrets: []SecretValue{testSecretNew}, MessageID: "m"}, ErrInvalid},
		{"sw no message id", SignInput{Signing: Signing{Scheme: SchemeStandardWebhooks}, Secrets: []SecretValue{testSecretNew}, Time: testTime}, ErrInvalidID},
		{"sw message id with newline", SignInput{Signing: Signing{Scheme: SchemeStandardWebhooks}, Secrets: []SecretValue{testSecretNew}, MessageID: "m\r\nX-Evil: 1", Time: testTime}, ErrInvalidID},
		{"sw secret without whsec_", SignInput{Signing: Signing{Scheme: SchemeStandardWebhooks}, Secrets: []SecretValue{"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="}, MessageID: "m", Time: testTime}, ErrInvalidSecret},
		{"sw secret not base64", SignInput{Signing: Signing{Scheme: SchemeStandardWebhooks}, Secrets: []SecretValue{"whsec_not*base64"}, MessageID: "m", Time: testTime}, ErrInvalidSecret},
		{"sw secret too short", SignInput{Signing: Signing{Scheme: SchemeStandardWebhooks}, Secrets: []SecretValue{short}, MessageID: "m", Time: testTime}, ErrInvalidSecret},
		{"sw secret too long", SignInput{Signing: Signing{Scheme: SchemeStandardWebhooks}, Secrets: []SecretValue{long}, MessageID: "m", Time: testTime}, ErrInvalidSecret},
		{"sw second secret bad", SignInput{Signing: Signing{Scheme: SchemeStandardWebhooks}, Secrets: []SecretValue{testSecretNew, "plain-text-secret-123"}, MessageID: "m", Time: testTime}, ErrInvalidSecret},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h, err := DefaultSigner().Sign(tt.in)
			require.ErrorIs(t, err, tt.want)
			require.ErrorIs(t, err, ErrInvalid)
			require.Nil(t, h)
			for _, s := range tt.in.Secrets {
				if s != "" {
					require.NotContains(t, err.Error(), string(s))
				}
			}
		})
	}
}

func TestSignSecretBounds(t *testing.T) {
	t.Parallel()
	for _, n := range []int{minSecretBytes, maxSecretBytes} {
		secret := SecretValue("whsec_" + base64.StdEncoding.EncodeToString(make([]byte, n)))
		h := mustSign(t, SignInput{
			Signing: Signing{Scheme: SchemeStandardWebhooks}, Secrets: []SecretValue{secret},
			MessageID: "m", Body: []byte("b"), Time: testTime,
		})
		require.NoError(t, VerifyStandardWebhooks(h, []byte("b"), 0, testTime, secret))
	}

	// As many live secrets as a header may carry still verify.
	secrets := make([]SecretValue, maxSignatures)
	for i := range secrets {
		secrets[i] = SecretValue(fmt.Sprintf("whsec_%s", base64.StdEncoding.EncodeToString([]byte(fmt.Sprintf("secret-number-%02d-of-thirty-two", i)))))
	}
	for _, s := range []Signing{{Hash: SHA512}, {Hash: SHA512, Encoding: Base64}, {Scheme: SchemeStandardWebhooks}} {
		h := mustSign(t, SignInput{Signing: s, Secrets: secrets, MessageID: "m", Body: []byte("b"), Time: testTime})
		v := &Verifier{Signing: s, Secrets: secrets[maxSignatures-1:], Now: func() time.Time { return testTime }}
		require.NoError(t, v.Verify(h, []byte("b")))
	}
}

// TestSignConcurrent shares one signer between goroutines (run with -race).
func TestSignConcurrent(t *testing.T) {
	t.Parallel()
	signer := DefaultSigner()
	in := SignInput{Secrets: []SecretValue{testSecretNew, testSecretOld}, MessageID: "m", Body: []byte("body"), Time: testTime}
	want := mustSign(t, in)
	const n = 16
	got := make([]http.Header, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], errs[i] = signer.Sign(in)
		}()
	}
	wg.Wait()
	for i := range n {
		require.NoError(t, errs[i])
		require.Equal(t, want, got[i])
	}
}

// TestSigningSecretsNeverPrinted checks that fmt output of the types holding
// secrets, and the errors of signing and verification, never show one.
func TestSigningSecretsNeverPrinted(t *testing.T) {
	t.Parallel()
	const plain SecretValue = "plain-text-secret-value-0123456789"
	secrets := []SecretValue{testSecretNew, plain}
	v := Verifier{Secrets: secrets, Now: func() time.Time { return testTime }}
	in := SignInput{Secrets: secrets, MessageID: "m", Body: []byte("b"), Time: testTime}

	var out []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q"} {
		out = append(out,
			fmt.Sprintf(verb, v), fmt.Sprintf(verb, &v),
			fmt.Sprintf(verb, in), fmt.Sprintf(verb, &in),
			fmt.Sprintf(verb, secrets))
	}
	_, err := DefaultSigner().Sign(SignInput{Signing: Signing{Scheme: SchemeStandardWebhooks}, Secrets: secrets, MessageID: "m", Time: testTime})
	require.ErrorIs(t, err, ErrInvalidSecret)
	out = append(out, err.Error(), fmt.Sprintf("%+v %#v", err, err))
	v.Signing.Scheme = SchemeStandardWebhooks
	err = v.Verify(http.Header{}, nil)
	require.ErrorIs(t, err, ErrInvalidSecret)
	out = append(out, err.Error(), fmt.Sprintf("%+v %#v", err, err))
	h := mustSign(t, SignInput{Secrets: []SecretValue{testSecretOld}, Body: []byte("b"), Time: testTime})
	err = (&Verifier{Secrets: secrets, Now: v.Now}).Verify(h, []byte("b"))
	require.ErrorIs(t, err, ErrSignatureMismatch)
	out = append(out, err.Error(), fmt.Sprintf("%+v %#v", err, err))

	all := strings.Join(out, "\n")
	require.Contains(t, all, "[REDACTED]")
	for _, s := range []string{string(testSecretNew), string(plain), "ZGVmZ2hp", "plain-text"} {
		require.NotContains(t, all, s)
	}
}

// BenchmarkSign signs a 1 KiB body with one secret in each scheme: the
// signer runs once per attempt, so its allocations are a share of every
// delivery's.
//
//	go test -run '^$' -bench Sign -benchmem
func BenchmarkSign(b *testing.B) {
	body := []byte(`{"pad":"` + strings.Repeat("x", 1000) + `"}`)
	secret, err := GenerateSecret()
	require.NoError(b, err)
	for _, scheme := range []Scheme{SchemeConvoyAdvanced, SchemeConvoySimple, SchemeStandardWebhooks} {
		b.Run(string(scheme), func(b *testing.B) {
			in := SignInput{
				Signing: Signing{Scheme: scheme}, Secrets: []SecretValue{secret},
				MessageID: NewID(), Body: body, Time: time.Unix(1700000000, 0),
			}
			s := DefaultSigner()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Sign(in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
