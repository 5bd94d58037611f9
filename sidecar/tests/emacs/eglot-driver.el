;;; eglot-driver.el --- Emacs eglot participant for sidecar/tests/stock_clients.rs -*- lexical-binding: t -*-
;; Run as: emacs --batch -q -l eglot-driver.el (-q: no init file, but the site files that activate Debian's elpa-eglot)
;; Env: DS_SETTINGS (the README's eglot settings, loaded as a user's init would), DS_FILE,
;; DS_NAME, DS_SEED, DS_N, DS_SAVE_AT, DS_OUT, DS_GO, DS_STOP.
;; Writes DS_OUT.ready once eglot manages the buffer, waits for DS_GO, makes DS_N random edits
;; (insert/delete-region, as typing would) in bursts with pauses, saves after edit DS_SAVE_AT,
;; writes DS_OUT.markers and DS_OUT.done, then keeps writing the buffer text to DS_OUT until
;; DS_STOP exists; finally DS_OUT.prompts lists every question Emacs asked (none expected).
;; Batch Emacs is never idle, so the pauses run the idle timers eglot uses to send its
;; didChange (`eglot-send-changes-idle-time'), as an idle interactive Emacs would.

(require 'eglot)
(setq debug-on-error nil)

(defvar ds-prompts nil "Every question asked, newest first.")
(dolist (f '(yes-or-no-p y-or-n-p ask-user-about-supersession-threat
             ask-user-about-lock read-from-minibuffer))
  (let ((name f))
    (advice-add f :override
                (lambda (&rest args)
                  (push (format "%s %S" name args) ds-prompts)
                  (pcase name
                    ('read-from-minibuffer "")
                    ('ask-user-about-supersession-threat nil)
                    ('ask-user-about-lock t)
                    (_ t))))))

(defun ds-env (k) (getenv k))
(defun ds-write (path text)
  (let ((tmp (concat path ".tmp")))
    (with-temp-file tmp
      (set-buffer-multibyte t)
      (setq buffer-file-coding-system 'utf-8-unix)
      (insert text))
    (rename-file tmp path t)))
(defun ds-fail (msg)
  (message "eglot-driver [%s]: %s" (ds-env "DS_NAME") msg)
  (kill-emacs 1))
(defun ds-wait (secs pred)
  (let ((t0 (float-time)))
    (while (and (not (funcall pred)) (< (- (float-time) t0) secs))
      (accept-process-output nil 0.02))
    (funcall pred)))
(defun ds-idle ()
  "Run the idle timers, as Emacs does once it has been idle long enough."
  (dolist (tm (copy-sequence timer-idle-list))
    (when (memq tm timer-idle-list)
      (timer-event-handler tm))))

(load (ds-env "DS_SETTINGS") nil t)
(setq project-find-functions
      (list (lambda (dir) (cons 'transient (file-name-directory (ds-env "DS_FILE"))))))
(find-file (ds-env "DS_FILE"))
(defvar ds-buf (current-buffer))
(apply #'eglot (eglot--guess-contact))
(unless (ds-wait 30 (lambda () (with-current-buffer ds-buf (eglot-managed-p))))
  (ds-fail "eglot did not attach"))
(ds-write (concat (ds-env "DS_OUT") ".ready") "")
(unless (ds-wait 60 (lambda () (file-exists-p (ds-env "DS_GO"))))
  (ds-fail "no go"))

(defun ds-text () (with-current-buffer ds-buf
                    (save-restriction (widen) (buffer-substring-no-properties (point-min) (point-max)))))
(defun ds-markers (s)
  (let ((pos 0) spans)
    (while (string-match "<[[:alnum:]]+:[0-9]+>" s pos)
      (push (cons (match-beginning 0) (match-end 0)) spans)
      (setq pos (match-end 0)))
    spans))

(random (ds-env "DS_SEED"))
(let* ((n (string-to-number (ds-env "DS_N")))
       (save-at (string-to-number (or (ds-env "DS_SAVE_AT") "-1")))
       (pool ["e" "f" "é" "😀" "\n" "xy" "ü\n" " " "日本"])
       (burst 0) mine)
  (dotimes (k n)
    (let* ((i (1+ k)) (s (ds-text)) (len (length s)) (spans (ds-markers s)) (r (random 100)))
      (with-current-buffer ds-buf
        (if (and (< r 25) (> len 0))
            (let* ((a (random len)) (e (min len (+ a 1 (random 3)))))
              (unless (seq-some (lambda (sp) (and (< a (cdr sp)) (> e (car sp)))) spans)
                (delete-region (1+ a) (1+ e))))
          (let ((p (if (< r 40) 0 (random (1+ len)))))
            (dolist (sp spans) (when (and (> p (car sp)) (< p (cdr sp))) (setq p (car sp))))
            (goto-char (1+ p))
            (insert (if (>= r 75)
                        (let ((m (format "<%s:%d>" (ds-env "DS_NAME") i))) (push m mine) m)
                      (aref pool (random (length pool))))))))
      (when (= i save-at)
        (with-current-buffer ds-buf (save-buffer))
        (when (buffer-modified-p ds-buf) (ds-fail "save left the buffer modified"))
        (ds-write (concat (ds-env "DS_OUT") ".saved")
                  (with-temp-buffer (insert-file-contents (ds-env "DS_FILE")) (buffer-string))))
      ;; Bursts: a few ms between keys, then a pause; pauses of 0.5 s or more are idle time.
      (setq burst (1- burst))
      (if (> burst 0)
          (accept-process-output nil (/ (random 4) 1000.0))
        (setq burst (+ 3 (random 20)))
        (let ((pause (/ (+ 50 (random 700)) 1000.0)))
          (accept-process-output nil pause)
          (when (>= pause eglot-send-changes-idle-time) (ds-idle))))))
  (ds-write (concat (ds-env "DS_OUT") ".markers") (mapconcat #'identity (reverse mine) "\n")))
(ds-write (concat (ds-env "DS_OUT") ".done") "")
(let ((last nil) (idle-at (+ (float-time) 0.6)))
  (while (not (file-exists-p (ds-env "DS_STOP")))
    (accept-process-output nil 0.02)
    (when (> (float-time) idle-at) (ds-idle) (setq idle-at (+ (float-time) 0.6)))
    (let ((tx (ds-text)))
      (unless (equal tx last)
        (ds-write (ds-env "DS_OUT") tx)
        (setq last tx)))))
(ds-write (ds-env "DS_OUT") (ds-text))
(ds-write (concat (ds-env "DS_OUT") ".prompts") (mapconcat #'identity (reverse ds-prompts) "\n"))
(kill-emacs 0)
