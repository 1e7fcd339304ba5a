package domain

// Conversation is the state of the direct messages between two users, folded
// from their DMStream with Apply. The zero value (or nil) is a conversation
// with no messages. It is not safe for concurrent use.
type Conversation struct {
	stream  string
	version uint64
	sent    map[sentKey]sentMessage
}

// Apply folds one event of the conversation's stream into cv; every event
// counts towards Version.
func (cv *Conversation) Apply(env Envelope) {
	cv.version++
	e, ok := env.Event.(DirectMessageSent)
	if !ok {
		return
	}
	cv.stream = DMStream(e.SenderID, e.ToUserID)
	if e.ClientMsgID == "" {
		return
	}
	if cv.sent == nil {
		cv.sent = make(map[sentKey]sentMessage)
	}
	cv.sent[sentKey{e.SenderID, e.ClientMsgID}] = sentMessage{
		messageID: e.MessageID, eventID: env.ID, version: cv.version, digest: contentDigest(e.Content),
	}
}

// Version returns how many events were applied; append with
// eventstore.Exact(Version()).
func (cv *Conversation) Version() uint64 {
	if cv == nil {
		return 0
	}
	return cv.version
}

// Sent returns the result of the DM sender sent with clientMsgID, if any.
func (cv *Conversation) Sent(sender, clientMsgID string) (MessageResult, bool) {
	if cv == nil || clientMsgID == "" {
		return MessageResult{}, false
	}
	m, ok := cv.sent[sentKey{sender, clientMsgID}]
	if !ok {
		return MessageResult{}, false
	}
	return m.result(), true
}

// SendDM is dm:send.
type SendDM struct {
	ToUserID    string
	Content     string
	ClientMsgID string // optional; a retry from the same sender appends nothing
}

// Validate checks the command's shape, size included.
func (cmd SendDM) Validate(l Limits) error {
	l = l.WithDefaults()
	if err := ValidateUserID(cmd.ToUserID); err != nil {
		return err
	}
	if err := validateContent(cmd.Content, l.MaxContentBytes); err != nil {
		return err
	}
	return validateClientMsgID(cmd.ClientMsgID)
}

// Decide sends the DM. conv is the state of DMStream(actor, cmd.ToUserID).
// Any authenticated user may write to any other; whether the recipient
// exists is not known here (users live in the identity provider). A DM to
// oneself is ErrDMToSelf: a client that does it has a bug. A retry of an
// accepted clientMsgId returns the original result (Duplicate) and no events.
func (cmd SendDM) Decide(c Context, conv *Conversation) (MessageResult, []Event, error) {
	user, err := c.user()
	if err != nil {
		return MessageResult{}, nil, err
	}
	if err := cmd.Validate(c.Limits); err != nil {
		return MessageResult{}, nil, err
	}
	if err := ValidateUserID(user); err != nil {
		return MessageResult{}, nil, err
	}
	if user == cmd.ToUserID {
		return MessageResult{}, nil, ErrDMToSelf
	}
	if conv != nil && conv.stream != "" && conv.stream != DMStream(user, cmd.ToUserID) {
		return MessageResult{}, nil, ErrWrongStateForCommand.Withf("conversation %q given for %q", conv.stream, DMStream(user, cmd.ToUserID))
	}
	if cmd.ClientMsgID != "" && conv != nil {
		if m, ok := conv.sent[sentKey{user, cmd.ClientMsgID}]; ok {
			if m.digest != contentDigest(cmd.Content) {
				return MessageResult{}, nil, ErrClientMsgIDReused.Withf("%q", truncate(cmd.ClientMsgID))
			}
			return m.result(), nil, nil
		}
	}
	id, err := c.newID()
	if err != nil {
		return MessageResult{}, nil, err
	}
	return MessageResult{MessageID: id}, []Event{DirectMessageSent{
		MessageID: id, SenderID: user, ToUserID: cmd.ToUserID, Content: cmd.Content, ClientMsgID: cmd.ClientMsgID,
	}}, nil
}
