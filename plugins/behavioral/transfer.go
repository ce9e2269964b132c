package main

import "github.com/decnet/ttp/sdk"

// ingressTransfer is R0101: files landed on the honeypot during the session, fetched by the
// attacker (wget, curl, tftp) or pushed to it (scp, sftp), as the sensor recorded them with
// their sha256 (Cowrie's cowrie.session.file_download and file_upload, in
// payload.downloads). A recorded hash means the bytes arrived, which the command text alone
// cannot tell: a fetch that failed, or an upload with no command after it, looks the same to
// the command rules. A download without a sha256 (failed) does not count.
type ingressTransfer struct {
	minFiles int64
}

func newIngressTransfer(c *conf) detector {
	return &ingressTransfer{minFiles: c.intMin("min_files", 1, 1)}
}

func (t *ingressTransfer) detect(s *session, r *sdk.Rule[params], out *sdk.Drafts) {
	hosts, shas := s.strs3[:0], s.files[:0]
	for i, u := range s.urls {
		sha := s.sha(i)
		if sha == "" {
			continue
		}
		shas = appendUnique(shas, sha)
		if h := urlHost(u); h != "" {
			hosts = appendUnique(hosts, h)
		}
	}
	if int64(len(shas)) >= t.minFiles {
		emit(r, out, allEmits, func(d *sdk.Draft) {
			d.Int(kFiles, int64(len(shas))).Strings(kDownloadSHA, shas)
			if len(hosts) > 0 {
				d.Strings(kURLHosts, hosts)
			}
		})
	}
	s.strs3, s.files = hosts[:0], shas[:0]
}
